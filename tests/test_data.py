"""Tests for steg.data: image loading, pair datasets and the DataModules."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from steg import data
from steg.data import (
    DIV2KDataModule,
    FolderDataModule,
    ImageError,
    SampleDataModule,
    StegPairs,
    TinyImageNetDataModule,
    check_images,
    find_images,
    load_image,
    sample_photo_paths,
    to_tensor,
)

SIZE = 32  # image_size used in the tests (small = fast)


# --------------------------------------------------------------------------- #
# Helpers and fixtures: small image trees built with Pillow
# --------------------------------------------------------------------------- #


def _noise(width: int, height: int, seed: int, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    shape = (height, width, 3) if mode == "RGB" else (height, width)
    return Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode)


def _gradient(width: int, height: int) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.float64)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.float64)[:, None].repeat(width, 1)
    rgb = np.stack([x, y, 255 - x], axis=-1).astype(np.uint8)
    return Image.fromarray(rgb, mode="RGB")


def _write_mixed(folder: Path, count: int, seed: int = 0, ext: str = ".png") -> list[Path]:
    """``count`` images of varied sizes/modes, some smaller than SIZE."""
    folder.mkdir(parents=True, exist_ok=True)
    sizes = [(80, 60), (64, 96), (40, 40), (120, 50), (20, 28), (33, 70), (48, 48), (100, 100)]
    paths = []
    for i in range(count):
        w, h = sizes[i % len(sizes)]
        img = _gradient(w, h) if i % 3 == 0 else _noise(w, h, seed + i, "L" if i % 4 == 1 else "RGB")
        path = folder / f"img_{i:02d}{ext}"
        img.save(path)
        paths.append(path)
    return paths


def _write_constant(folder: Path, count: int) -> list[Path]:
    """Constant-grey images whose value (10 * (i + 1)) identifies item i."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"c_{i:02d}.png"
        Image.new("RGB", (40 + 5 * i, 36), (10 * (i + 1),) * 3).save(path)
        paths.append(path)
    return paths


def _identity(t: torch.Tensor) -> int:
    """Item index of a constant image written by _write_constant."""
    return round(float(t.mean()) * 255 / 10) - 1


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("trees")
    # Generic folder: nested, mixed extensions (including upper-case).
    folder = base / "folder"
    _write_mixed(folder / "a", 4, seed=0, ext=".png")
    _write_mixed(folder / "b" / "deep", 3, seed=10, ext=".JPG")
    _write_mixed(folder / "c", 3, seed=20, ext=".bmp")
    # Folder + separate val_root.
    _write_mixed(base / "split_train", 6, seed=30, ext=".webp")
    _write_mixed(base / "split_val", 5, seed=40, ext=".tif")
    # DIV2K layout.
    div2k = base / "div2k"
    _write_mixed(div2k / "DIV2K_train_HR", 6, seed=50)
    _write_mixed(div2k / "DIV2K_valid_HR", 4, seed=60)
    # Tiny ImageNet layout.
    tiny = base / "tiny-imagenet-200"
    for k, wnid in enumerate(("n01443537", "n01629819")):
        images = tiny / "train" / wnid / "images"
        images.mkdir(parents=True)
        for i in range(3):
            _noise(64, 64, 70 + 10 * k + i).save(images / f"{wnid}_{i}.JPEG")
    (tiny / "val" / "images").mkdir(parents=True)
    for i in range(4):
        _noise(64, 64, 90 + i).save(tiny / "val" / "images" / f"val_{i}.JPEG")
    return {"folder": folder, "split_train": base / "split_train", "split_val": base / "split_val",
            "div2k": div2k, "tiny": tiny}


def _make_dm(layout: str, trees: dict[str, Path], **kwargs):
    kwargs.setdefault("val_tiles_per_image", 1)
    kwargs.setdefault("image_size", SIZE)
    kwargs.setdefault("batch_size", 2)
    if layout == "sample":
        return SampleDataModule(train_repeats=2, val_tiles=8, **kwargs)
    if layout == "folder":
        return FolderDataModule(root=trees["folder"], val_fraction=0.2, **kwargs)
    if layout == "folder_val_root":
        return FolderDataModule(root=trees["split_train"], val_root=trees["split_val"], **kwargs)
    if layout == "div2k":
        return DIV2KDataModule(root=trees["div2k"], **kwargs)
    if layout == "tiny_imagenet":
        return TinyImageNetDataModule(root=trees["tiny"], **kwargs)
    raise AssertionError(layout)


def _assert_batch(batch, batch_size: int, channels: int) -> None:
    assert isinstance(batch, (tuple, list)) and len(batch) == 2  # default_collate gives a list
    for t in batch:
        assert t.shape == (batch_size, channels, SIZE, SIZE)
        assert t.dtype == torch.float32
        assert float(t.min()) >= 0.0 and float(t.max()) <= 1.0


# --------------------------------------------------------------------------- #
# DataModules: every layout, channels, pairing and mode
# --------------------------------------------------------------------------- #

LAYOUTS = ["sample", "folder", "folder_val_root", "div2k", "tiny_imagenet"]


@pytest.mark.parametrize("mode", ["crop", "resize"])
@pytest.mark.parametrize("pairing", ["split", "random"])
@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_batches_have_right_shape_dtype_range(trees, layout, channels, pairing, mode):
    dm = _make_dm(layout, trees, channels=channels, pairing=pairing, mode=mode)
    dm.setup("fit")
    _assert_batch(next(iter(dm.train_dataloader())), 2, channels)
    val_batch = next(iter(dm.val_dataloader()))
    _assert_batch(val_batch, min(2, len(dm.val_dataset)), channels)
    assert dm.val_dataset.pairing == "split"


def test_setup_is_idempotent_and_loaders_are_configured(trees):
    dm = _make_dm("folder", trees, num_workers=1)
    dm.setup()
    train, val = dm.train_dataset, dm.val_dataset
    dm.setup("validate")
    assert dm.train_dataset is train and dm.val_dataset is val
    train_loader, val_loader = dm.train_dataloader(), dm.val_dataloader()
    assert train_loader.drop_last and not val_loader.drop_last
    assert isinstance(train_loader.sampler, data.EpochSampler)
    assert isinstance(val_loader.sampler, torch.utils.data.SequentialSampler)
    assert train_loader.persistent_workers and val_loader.persistent_workers
    assert not _make_dm("folder", trees).persistent_workers


def test_dataloader_before_setup_is_an_error(trees):
    with pytest.raises(RuntimeError, match="setup"):
        _make_dm("folder", trees).train_dataloader()


def test_batch_size_larger_than_training_set(trees):
    dm = _make_dm("div2k", trees, batch_size=64)
    with pytest.raises(ValueError, match="data.batch_size"):
        dm.setup()


# --------------------------------------------------------------------------- #
# Embedded sample
# --------------------------------------------------------------------------- #


def test_sample_photo_lists_are_disjoint_and_shipped():
    assert not set(data.SAMPLE_TRAIN_PHOTOS) & set(data.SAMPLE_VAL_PHOTOS)
    train, val = sample_photo_paths("train"), sample_photo_paths("val")
    assert len(train) == 12 and len(val) == 4
    assert all(p.is_file() for p in train + val)
    assert not {p.resolve() for p in train} & {p.resolve() for p in val}
    assert any("matplotlib" in str(p) and p.name == "grace_hopper.jpg" for p in val)
    with pytest.raises(ValueError, match="split"):
        sample_photo_paths("test")


def test_sample_validation_is_deterministic():
    def val_tensors(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        torch.manual_seed(seed)
        dm = SampleDataModule(image_size=SIZE, batch_size=4, val_tiles=8, pairing="random")
        dm.setup()
        covers, secrets = zip(*dm.val_dataloader())
        return torch.cat(covers), torch.cat(secrets)

    first, second = val_tensors(0), val_tensors(1)
    assert first[0].shape == (4, 3, SIZE, SIZE)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert not torch.equal(first[0], first[1])


def test_sample_val_tiles_pair_different_photos_and_respect_limits():
    from steg.data.pairs import _prepared_size

    photos = [load_image(p).size for p in sample_photo_paths("val")]
    sizes = [_prepared_size(w, h, 64, "crop") for w, h in photos]
    for size, count in [(SIZE, 64), (64, 64), (128, 100), (512, 64)]:
        tiles = data.tile_boxes([_prepared_size(w, h, size, "crop") for w, h in photos], size, total=count)
        n = len(tiles)
        assert n % 2 == 0 and 2 <= n <= count
        assert all(box[2] - box[0] == size and box[3] - box[1] == size for _, box in tiles)
        assert all(tiles[i][0] != tiles[i + n // 2][0] for i in range(n // 2))
    assert len(data.tile_boxes(sizes, 64, total=64)) == 64
    dm = SampleDataModule(image_size=SIZE, batch_size=2, val_tiles=64, val_limit=10)
    dm.setup()
    assert len(dm.val_dataset) == 5
    assert len(dm.train_dataset) == 6 * 64  # 12 photos, split pairing, train_repeats=64
    covers, secrets = next(iter(dm.val_dataloader()))
    assert covers.shape == (2, 3, SIZE, SIZE) and not torch.equal(covers, secrets)


@pytest.mark.parametrize("layout", ["folder_val_root", "div2k", "tiny_imagenet"])
def test_every_data_module_validates_on_several_tiles_per_image(trees, layout):
    one = _make_dm(layout, trees, val_tiles_per_image=1)
    many = _make_dm(layout, trees, val_tiles_per_image=4)
    one.setup()
    many.setup()
    assert len(one.val_dataset.sources) == len({t.source for t in one.val_dataset.sources})  # one per image
    assert len(many.val_dataset.sources) > len(one.val_dataset.sources)
    tiles = many.val_dataset.sources
    assert all(isinstance(t, data.Tile) for t in tiles)
    assert len({(str(t.source), t.box) for t in tiles}) == len(tiles)  # distinct tiles
    first = torch.cat([c for c, _ in many.val_dataloader()])
    again = torch.cat([c for c, _ in many.val_dataloader()])
    assert torch.equal(first, again) and first.shape[1:] == (3, SIZE, SIZE)


def test_samples_per_epoch_sets_the_epoch_length_for_every_data_module(trees):
    for layout in ("folder", "div2k", "tiny_imagenet"):
        dm = _make_dm(layout, trees, samples_per_epoch=50)
        dm.setup()
        assert len(dm.train_dataset) == 50
        assert len(dm.train_dataloader()) == 50 // dm.batch_size
    dm = SampleDataModule(image_size=SIZE, batch_size=2, samples_per_epoch=30)
    dm.setup()
    assert len(dm.train_dataset) == 30


def test_an_epoch_of_a_few_steps_warns_in_one_line(trees):
    with pytest.warns(UserWarning, match="an epoch is only 1 step.*data.samples_per_epoch") as record:
        _make_dm("folder", trees, samples_per_epoch=4, batch_size=4).setup()
    assert "\n" not in str(record[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _make_dm("folder", trees, samples_per_epoch=400, batch_size=4).setup()


def test_sample_training_is_reproducible_with_torch_seed():
    dm = SampleDataModule(image_size=SIZE, batch_size=2, pairing="random")
    dm.setup()
    torch.manual_seed(123)
    first = dm.train_dataset[5]
    torch.manual_seed(123)
    second = dm.train_dataset[5]
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


# --------------------------------------------------------------------------- #
# Pairing, determinism of validation, cropping
# --------------------------------------------------------------------------- #


def test_split_pairing_pairs_item_i_with_i_plus_half(tmp_path):
    paths = _write_constant(tmp_path, 7)  # odd: the last item is unused
    pairs = StegPairs(paths, image_size=SIZE, pairing="split", repeats=3)
    assert len(pairs) == 3 * 3
    for index in range(len(pairs)):
        cover, secret = pairs[index]
        assert (_identity(cover), _identity(secret)) == (index % 3, index % 3 + 3)


def test_random_pairing_draws_a_different_secret_each_time(tmp_path):
    paths = _write_constant(tmp_path, 6)
    pairs = StegPairs(paths, image_size=SIZE, pairing="random")
    assert len(pairs) == 6
    torch.manual_seed(0)
    secrets_of_0 = set()
    for _ in range(5):
        for index in range(len(pairs)):
            cover, secret = pairs[index]
            assert _identity(cover) == index
            assert _identity(secret) != index and 0 <= _identity(secret) < 6
            assert not torch.equal(cover, secret)
            if index == 0:
                secrets_of_0.add(_identity(secret))
    assert len(secrets_of_0) > 1  # fresh pairs at every access


def test_validation_items_are_never_random(trees):
    dm = _make_dm("folder_val_root", trees, pairing="random", flip=True)
    dm.setup()
    val = dm.val_dataset
    assert not val.train and not val.flip and val.pairing == "split"
    n = len(val.sources)
    for index in range(len(val)):
        torch.manual_seed(index)
        cover_a, secret_a = val[index]
        torch.manual_seed(1000 + index)
        cover_b, secret_b = val[index]
        assert torch.equal(cover_a, cover_b) and torch.equal(secret_a, secret_b)
        # Fixed tile of item i (cover) and item i + n // 2 (secret), from the (upscaled) image.
        for tensor, item in ((cover_a, index), (secret_a, index + n // 2)):
            tile = val.sources[item]
            img = data.pairs._prepare(load_image(tile.source), SIZE, "crop")
            assert img.size[0] >= SIZE and img.size[1] >= SIZE
            assert torch.equal(tensor, to_tensor(img.crop(tile.box)))


def test_training_crops_and_flips_are_random(tmp_path):
    path = tmp_path / "gradient.png"
    _gradient(90, 70).save(path)
    pairs = StegPairs([path, path], image_size=SIZE, mode="crop", train=True)
    torch.manual_seed(0)
    crops = [pairs.load_item(0) for _ in range(8)]
    assert any(not torch.equal(crops[0], c) for c in crops[1:])
    fixed = StegPairs([path, path], image_size=SIZE, mode="resize", flip=False)
    assert torch.equal(fixed.load_item(0), fixed.load_item(0))


@pytest.mark.parametrize("mode", ["crop", "resize"])
def test_image_smaller_than_image_size_is_upscaled(tmp_path, mode):
    small = tmp_path / "small.png"
    _noise(20, 12, 1).save(small)
    pairs = StegPairs([small, small], image_size=SIZE, mode=mode, train=True)
    cover, secret = pairs[0]
    assert cover.shape == secret.shape == (3, SIZE, SIZE)


def test_folder_split_is_deterministic_and_respects_val_fraction(trees):
    def split(**kwargs):
        dm = _make_dm("folder", trees, **kwargs)
        dm.setup()
        return dm.train_dataset.sources, dm.val_dataset.sources

    train_a, val_a = split()
    train_b, val_b = split()
    assert val_a == val_b and train_a == train_b
    assert len(val_a) == 2 and len(train_a) == 8  # 10 images, val_fraction=0.2
    assert not set(train_a) & set(val_a)
    assert sorted(val_a) == val_a
    train_c, val_c = split(val_limit=2)
    assert val_c == val_a[:2]


def test_val_limit_takes_first_sorted_images(trees):
    dm = _make_dm("folder_val_root", trees, val_limit=4)
    dm.setup()
    assert [t.source for t in dm.val_dataset.sources] == find_images(trees["split_val"])[:4]
    assert len(dm.val_dataset) == 2


# --------------------------------------------------------------------------- #
# Bad inputs
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("cls", [FolderDataModule, DIV2KDataModule, TinyImageNetDataModule])
def test_missing_root(tmp_path, cls):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="nowhere"):
        cls(root=missing).setup()


def test_empty_root(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(FileNotFoundError, match="expected a folder of .png/.jpg"):
        FolderDataModule(root=tmp_path).setup()


def test_too_few_images_for_a_split(tmp_path):
    _write_mixed(tmp_path, 3)
    with pytest.raises(ValueError, match="at least 4"):
        FolderDataModule(root=tmp_path, batch_size=1).setup()


def test_wrong_div2k_layout_names_missing_subfolder(tmp_path):
    _write_mixed(tmp_path / "DIV2K_train_HR", 4)
    with pytest.raises(FileNotFoundError) as info:
        DIV2KDataModule(root=tmp_path).setup()
    message = str(info.value)
    assert "DIV2K_valid_HR" in message and str(tmp_path) in message and "expected" in message
    assert "\n" not in message


def test_wrong_tiny_imagenet_layout_names_missing_subfolder(tmp_path):
    root = tmp_path / "tiny-imagenet-200"
    _write_mixed(root / "train" / "n01" / "images", 4, ext=".JPEG")
    (root / "val").mkdir()
    with pytest.raises(FileNotFoundError) as info:
        TinyImageNetDataModule(root=root).setup()
    assert "val/images" in str(info.value) and str(root) in str(info.value)


def test_tiny_imagenet_accepts_parent_folder(trees):
    dm = TinyImageNetDataModule(root=trees["tiny"].parent, image_size=SIZE, batch_size=2)
    dm.setup()
    assert len(dm.train_dataset.sources) == 6 and len(dm.val_dataset.sources) == 4


def test_corrupt_and_truncated_files_are_skipped_with_one_warning(tmp_path):
    good = _write_mixed(tmp_path, 6)
    (tmp_path / "corrupt.png").write_bytes(b"definitely not a png")
    jpeg = tmp_path / "truncated.jpg"
    _noise(96, 96, 5).save(jpeg, quality=90)
    jpeg.write_bytes(jpeg.read_bytes()[: jpeg.stat().st_size // 2])

    dm = FolderDataModule(root=tmp_path, image_size=SIZE, batch_size=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dm.setup()
    skipped = [w for w in caught if "skipped" in str(w.message)]
    assert len(skipped) == 1
    message = str(skipped[0].message)
    assert "skipped 2 " in message and "corrupt.png" in message and "truncated.jpg" in message
    used = set(dm.train_dataset.sources) | {t.source for t in dm.val_dataset.sources}
    assert used == set(good)


def test_check_images_and_find_images(tmp_path):
    paths = _write_mixed(tmp_path / "sub", 2)
    upper = tmp_path / "UPPER.PNG"
    _noise(10, 10, 0).save(upper, format="PNG")
    (tmp_path / "._hidden.png").write_bytes(b"AppleDouble junk")
    (tmp_path / "readme.md").write_text("x")
    found = find_images(tmp_path)
    assert found == sorted([upper, *paths])
    assert find_images(tmp_path, recursive=False) == [upper]
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    good_list, bad_list = check_images([*found, bad])
    assert good_list == found and bad_list == [bad]
    with pytest.raises(FileNotFoundError):
        find_images(tmp_path / "missing")


# --------------------------------------------------------------------------- #
# load_image conversions and errors
# --------------------------------------------------------------------------- #


def test_rgba_is_composited_over_white(tmp_path):
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[0, 0] = (0, 0, 0, 0)  # fully transparent black -> white
    rgba[0, 1] = (255, 0, 0, 255)  # opaque red stays red
    rgba[1, 0] = (0, 0, 0, 128)  # half-transparent black -> mid grey
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba, mode="RGBA").save(path)
    t = to_tensor(load_image(path))
    assert t.shape == (3, 2, 2)
    assert torch.equal(t[:, 0, 0], torch.ones(3))
    assert torch.equal(t[:, 0, 1], torch.tensor([1.0, 0.0, 0.0]))
    assert torch.allclose(t[:, 1, 0], torch.full((3,), 127 / 255), atol=1.5 / 255)
    la = tmp_path / "la.png"
    Image.fromarray(np.array([[[0, 0], [0, 255]]], dtype=np.uint8), mode="LA").save(la)
    assert to_tensor(load_image(la, channels=1)).flatten().tolist() == [1.0, 0.0]


def test_palette_images(tmp_path):
    palette_img = Image.new("P", (2, 1))
    palette_img.putpalette([255, 0, 0, 0, 0, 255] + [0, 0, 0] * 254)
    palette_img.putpixel((0, 0), 0)
    palette_img.putpixel((1, 0), 1)
    path = tmp_path / "palette.png"
    palette_img.save(path)
    img = load_image(path)
    assert img.mode == "RGB"
    assert np.asarray(img).tolist() == [[[255, 0, 0], [0, 0, 255]]]
    transparent = tmp_path / "palette_transparent.png"
    palette_img.save(transparent, transparency=0)
    assert np.asarray(load_image(transparent)).tolist() == [[[255, 255, 255], [0, 0, 255]]]


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_greyscale_is_scaled_not_clipped(tmp_path, suffix):
    path = tmp_path / f"deep{suffix}"
    Image.fromarray(np.array([[65535, 32896, 0]], dtype=np.uint16)).save(path)
    assert Image.open(path).mode.startswith("I")
    t = to_tensor(load_image(path, channels=1))
    assert t.shape == (1, 1, 3)
    assert t[0, 0, 0] == 1.0
    assert abs(float(t[0, 0, 1]) - 0.5) < 0.01
    assert t[0, 0, 2] == 0.0
    assert load_image(path, channels=3).mode == "RGB"


def test_32_bit_integer_and_float_images(tmp_path):
    int_path = tmp_path / "int32.tif"
    Image.fromarray(np.array([[65535, 32896]], dtype=np.int32), mode="I").save(int_path)
    assert Image.open(int_path).mode == "I"
    assert np.asarray(load_image(int_path, channels=1)).tolist() == [[255, 128]]
    float_path = tmp_path / "float.tif"
    Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32), mode="F").save(float_path)
    assert np.asarray(load_image(float_path, channels=1)).tolist() == [[0, 128, 255]]


def test_grey_to_rgb_and_rgb_to_luma(tmp_path):
    grey = tmp_path / "grey.png"
    _noise(8, 6, 3, mode="L").save(grey)
    rgb = load_image(grey, channels=3)
    t = to_tensor(rgb)
    assert rgb.mode == "RGB" and t.shape == (3, 6, 8)
    assert torch.equal(t[0], t[1]) and torch.equal(t[1], t[2])
    colour = tmp_path / "colour.png"
    source = _noise(8, 6, 4)
    source.save(colour)
    luma = load_image(colour, channels=1)
    assert luma.mode == "L"
    assert np.array_equal(np.asarray(luma), np.asarray(source.convert("L")))
    assert to_tensor(luma).shape == (1, 6, 8)


def test_cmyk_becomes_rgb(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(path)
    img = load_image(path)
    assert img.mode == "RGB"
    red, green, blue = np.asarray(img)[4, 4].tolist()
    assert red > 200 and green < 60 and blue < 60


def test_unsupported_mode_is_an_image_error(tmp_path):
    path = tmp_path / "lab.tif"
    Image.new("LAB", (4, 4)).save(path)
    with pytest.raises(ImageError, match="lab.tif.*unsupported image mode 'LAB'"):
        load_image(path)
    assert check_images([path]) == ([], [path])


def test_missing_and_corrupt_files_are_image_errors(tmp_path):
    with pytest.raises(ImageError, match="missing.png: file not found"):
        load_image(tmp_path / "missing.png")
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"garbage")
    with pytest.raises(ImageError, match="corrupt.jpg: unreadable") as info:
        load_image(corrupt)
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)


@pytest.mark.parametrize("side", [12, 30])  # warning zone (> limit) and error zone (> 2 x limit)
def test_decompression_bomb_is_an_image_error(tmp_path, monkeypatch, side):
    path = tmp_path / f"bomb_{side}.png"
    _noise(side, side, 0).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ImageError, match=f"bomb_{side}.png.*decompression bomb"):
        load_image(path)
    assert check_images([path]) == ([], [path])


def test_to_tensor_layout_and_range():
    img = Image.fromarray(np.array([[[0, 128, 255]]], dtype=np.uint8), mode="RGB")
    t = to_tensor(img)
    assert t.shape == (3, 1, 1) and t.dtype == torch.float32
    assert t.flatten().tolist() == pytest.approx([0.0, 128 / 255, 1.0])
    with pytest.raises(ValueError, match="mode"):
        to_tensor(Image.new("RGBA", (1, 1)))


# --------------------------------------------------------------------------- #
# Bad settings
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"channels": 2}, "data.channels must be 1 or 3, got 2"),
        ({"pairing": "x"}, "data.pairing must be 'split' or 'random', got 'x'"),
        ({"mode": "stretch"}, "data.mode"),
        ({"image_size": 8}, "data.image_size"),
        ({"image_size": 64.0}, "data.image_size"),
        ({"batch_size": 0}, "data.batch_size"),
        ({"num_workers": -1}, "data.num_workers"),
        ({"val_limit": 1}, "data.val_limit"),
        ({"flip": "yes"}, "data.flip"),
        ({"train_repeats": 0}, "data.train_repeats"),
        ({"val_tiles": 1}, "data.val_tiles"),
    ],
)
def test_bad_settings_name_the_setting(kwargs, setting):
    with pytest.raises(ValueError) as info:
        SampleDataModule(**kwargs)
    assert setting in str(info.value)


def test_bad_val_fraction(tmp_path):
    with pytest.raises(ValueError, match="data.val_fraction"):
        FolderDataModule(root=tmp_path, val_fraction=1.5)


def test_steg_pairs_rejects_bad_arguments(tmp_path):
    paths = _write_constant(tmp_path, 2)
    with pytest.raises(ValueError, match="at least 2"):
        StegPairs(paths[:1])
    with pytest.raises(ValueError, match="pairing"):
        StegPairs(paths, pairing="x")
    with pytest.raises(IndexError):
        StegPairs(paths)[1]


def test_validation_set_that_does_not_divide_among_processes_warns(trees):
    class FakeTrainer:
        world_size = 3

    dm = _make_dm("folder_val_root", trees, val_tiles_per_image=1)  # 5 images -> 2 pairs
    dm.trainer = FakeTrainer()
    with pytest.warns(UserWarning, match="2 validation pairs do not divide among 3 processes"):
        dm.setup()
