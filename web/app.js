/* steg in the browser: hide an image in another and reveal it, with the exported ONNX graphs.
 *
 * Models: models/models.json (written by `python -m steg.browser.page build`) lists the exported
 * models: NAME.hide.onnx (cover, secret -> stego) and NAME.reveal.onnx (stego -> secret),
 * all uint8 (1, C, H, W) tensors, H and W multiples of size_multiple. Like steg.inference.model,
 * images are padded at the bottom and right to that multiple (reflect, replicate for tiny
 * images), processed whole or, above (tile + 2 margin)^2 pixels, in overlapping tiles
 * whose origins lie on multiples of size_multiple, and cropped back.
 *
 * Images live here as planar uint8 arrays: {width, height, channels, data} with
 * data[(c * height + y) * width + x].
 *
 * window.stegTimings holds performance.now() figures (ms) for the tests and the benchmark:
 * ready_ms (navigation start -> models loaded), hide_ms, reveal_ms (button -> result and
 * its PNG ready).
 */
"use strict";

const MAX_PIXELS = 4096 * 4096;
const PNG_SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];
const PNG_TAG = "steg-model"; // tEXt keyword of older pages naming the model; read, never written
const timings = (window.stegTimings = {});

const state = {
  manifest: null,
  model: null, // the manifest entry in use
  sessions: new Map(), // model name -> {hide, reveal}
  cover: null,
  secret: null,
  stego: null, // the image to reveal
  made: null, // the last stego image made here
  urls: {},
};

const $ = (id) => document.getElementById(id);

// --------------------------------------------------------------------------------------
// Messages: one line of error, one line of status
// --------------------------------------------------------------------------------------

function showError(message) {
  const line = String(message).replace(/\s+/g, " ").trim();
  $("error").textContent = line;
  $("error").title = line;
  $("error").hidden = false;
  setStatus("");
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

function setStatus(message) {
  $("status").textContent = message;
}

class UserError extends Error {}

// --------------------------------------------------------------------------------------
// Models and onnxruntime-web sessions
// --------------------------------------------------------------------------------------

async function loadManifest() {
  let response;
  try {
    response = await fetch("models/models.json", { cache: "no-cache" });
  } catch (err) {
    throw new UserError(`cannot fetch models/models.json (${err.message}); serve this folder with 'steg web'`);
  }
  if (!response.ok) {
    throw new UserError(`models/models.json: HTTP ${response.status}; build the exported models with 'make web'`);
  }
  const manifest = await response.json();
  if (!Array.isArray(manifest.models) || manifest.models.length === 0) {
    throw new UserError("models/models.json lists no model; rebuild it with 'make web'");
  }
  return manifest;
}

async function sessionsFor(model) {
  if (!state.sessions.has(model.name)) {
    const options = { executionProviders: ["wasm"], graphOptimizationLevel: "all" };
    const [hide, reveal] = await Promise.all([
      ort.InferenceSession.create(`models/${model.hide}`, options),
      ort.InferenceSession.create(`models/${model.reveal}`, options),
    ]);
    for (const [graph, session, known] of [["hide", hide, ["cover", "secret"]], ["reveal", reveal, ["stego"]]]) {
      const unknown = session.inputNames.filter((name) => !known.includes(name));
      if (unknown.length) {
        // e.g. a key input (keyed models): this page does not feed keys yet
        throw new UserError(`model ${model.name}: its ${graph} graph needs the input(s) ${unknown.join(", ")}, which this page does not provide`);
      }
    }
    state.sessions.set(model.name, { hide, reveal });
  }
  return state.sessions.get(model.name);
}

async function chooseModel(name) {
  const model = state.manifest.models.find((m) => m.name === name);
  setBusy(true);
  setStatus(`Loading model ${name}...`);
  try {
    await sessionsFor(model);
    state.model = model;
    $("model-description").textContent = model.description;
    setStatus(`Ready: model ${model.name}.`);
  } finally {
    setBusy(false);
  }
}

// --------------------------------------------------------------------------------------
// Images: decoding, planar layout, PNG encoding
// --------------------------------------------------------------------------------------

function canvas2d(width, height) {
  const canvas = new OffscreenCanvas(width, height);
  return [canvas, canvas.getContext("2d", { willReadFrequently: true })];
}

/** Decode an image file (transparency over white, as steg.io does) -> RGBA ImageData. */
async function decodeFile(file, width, height) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  } catch (err) {
    throw new UserError(`${file.name}: not an image (expected a PNG, JPEG, WebP, GIF or BMP file)`);
  }
  try {
    if (bitmap.width * bitmap.height > MAX_PIXELS) {
      throw new UserError(`${file.name}: ${bitmap.width}x${bitmap.height} is too large (at most ${MAX_PIXELS.toLocaleString("en")} pixels, e.g. 4096x4096)`);
    }
    const w = width || bitmap.width;
    const h = height || bitmap.height;
    const [, ctx] = canvas2d(w, h);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, w, h);
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(bitmap, 0, 0, w, h);
    return { imageData: ctx.getImageData(0, 0, w, h), size: [bitmap.width, bitmap.height] };
  } finally {
    bitmap.close();
  }
}

/** RGBA ImageData -> planar uint8 image with `channels` channels (1: Pillow's ITU-R 601 luma). */
function toPlanar(imageData, channels) {
  const { width, height, data } = imageData;
  const n = width * height;
  const out = new Uint8Array(channels * n);
  for (let i = 0; i < n; i++) {
    const r = data[4 * i], g = data[4 * i + 1], b = data[4 * i + 2];
    if (channels === 1) {
      out[i] = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
    } else {
      out[i] = r;
      out[n + i] = g;
      out[2 * n + i] = b;
    }
  }
  return { width, height, channels, data: out };
}

function toImageData(img) {
  const { width, height, channels, data } = img;
  const n = width * height;
  const rgba = new Uint8ClampedArray(4 * n);
  for (let i = 0; i < n; i++) {
    rgba[4 * i] = data[i];
    rgba[4 * i + 1] = data[(channels === 3 ? n : 0) + i];
    rgba[4 * i + 2] = data[(channels === 3 ? 2 * n : 0) + i];
    rgba[4 * i + 3] = 255;
  }
  return new ImageData(rgba, width, height);
}

function show(img, canvasId) {
  const canvas = $(canvasId);
  canvas.width = img.width;
  canvas.height = img.height;
  canvas.getContext("2d").putImageData(toImageData(img), 0, 0);
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A lossless PNG of `img`; with `modelName`, a tEXt chunk `steg-model` after the header (stego PNGs get none). */
async function encodePng(img, modelName) {
  const [canvas, ctx] = canvas2d(img.width, img.height);
  ctx.putImageData(toImageData(img), 0, 0);
  const png = new Uint8Array(await (await canvas.convertToBlob({ type: "image/png" })).arrayBuffer());
  if (!modelName) return new Blob([png], { type: "image/png" });
  const text = new TextEncoder().encode(`${PNG_TAG}\0${modelName}`);
  const chunk = new Uint8Array(12 + text.length);
  const view = new DataView(chunk.buffer);
  view.setUint32(0, text.length);
  chunk.set(new TextEncoder().encode("tEXt"), 4);
  chunk.set(text, 8);
  view.setUint32(8 + text.length, crc32(chunk.subarray(4, 8 + text.length)));
  const afterHeader = 8 + 25; // signature + IHDR chunk
  return new Blob([png.subarray(0, afterHeader), chunk, png.subarray(afterHeader)], { type: "image/png" });
}

/** {isPng, tag}: whether `bytes` is a PNG and the model named in its steg-model tEXt chunk. */
function readPngTag(bytes) {
  if (bytes.length < 8 || PNG_SIGNATURE.some((b, i) => bytes[i] !== b)) return { isPng: false, tag: null };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let pos = 8; pos + 8 <= bytes.length;) {
    const length = view.getUint32(pos);
    const type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
    if (type === "IDAT" || type === "IEND") break;
    if (type === "tEXt") {
      const body = new TextDecoder("latin1").decode(bytes.subarray(pos + 8, pos + 8 + length));
      const [key, value] = body.split("\0");
      if (key === PNG_TAG) return { isPng: true, tag: value };
    }
    pos += 12 + length;
  }
  return { isPng: true, tag: null };
}

// --------------------------------------------------------------------------------------
// Padding and tiling, as steg.inference.model.StegModel._apply does
// --------------------------------------------------------------------------------------

const roundUp = (value, multiple) => Math.ceil(value / multiple) * multiple;

function pad(img, padH, padW) {
  const { width: w, height: h, channels: c, data } = img;
  if (padH === 0 && padW === 0) return img;
  const reflect = padH < h && padW < w;
  const src = (i, n) => (i < n ? i : reflect ? 2 * (n - 1) - i : n - 1);
  const hp = h + padH, wp = w + padW;
  const out = new Uint8Array(c * hp * wp);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < hp; y++) {
      const row = (ch * h + src(y, h)) * w;
      const base = (ch * hp + y) * wp;
      out.set(data.subarray(row, row + w), base);
      for (let x = w; x < wp; x++) out[base + x] = data[row + src(x, w)];
    }
  }
  return { width: wp, height: hp, channels: c, data: out };
}

function crop(img, y0, y1, x0, x1) {
  const { width: w, height: h, channels: c, data } = img;
  const cw = x1 - x0, chh = y1 - y0;
  const out = new Uint8Array(c * chh * cw);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < chh; y++) {
      const from = (ch * h + y0 + y) * w + x0;
      out.set(data.subarray(from, from + cw), (ch * chh + y) * cw);
    }
  }
  return { width: cw, height: chh, channels: c, data: out };
}

function paste(dst, src, y0, x0) {
  for (let ch = 0; ch < src.channels; ch++) {
    for (let y = 0; y < src.height; y++) {
      const from = (ch * src.height + y) * src.width;
      dst.data.set(src.data.subarray(from, from + src.width), (ch * dst.height + y0 + y) * dst.width + x0);
    }
  }
}

/** [start, end) spans of at most `tile`, near-equal, starting on multiples of `multiple`. */
function spans(length, tile, multiple) {
  const count = Math.max(1, Math.ceil(length / tile));
  const core = Math.max(multiple, roundUp(Math.ceil(length / count), multiple));
  const out = [];
  for (let start = 0; start < length; start += core) out.push([start, Math.min(start + core, length)]);
  return out;
}

async function runGraph(session, inputs) {
  const feeds = {};
  for (const [name, img] of Object.entries(inputs)) {
    feeds[name] = new ort.Tensor("uint8", img.data, [1, img.channels, img.height, img.width]);
  }
  const results = await session.run(feeds);
  const out = results[session.outputNames[0]];
  const [, c, h, w] = out.dims;
  return { width: w, height: h, channels: c, data: out.data };
}

/** Run a graph on equal-size planar images of any size: pad, tile, crop back. */
async function apply(session, inputs, model) {
  const first = Object.values(inputs)[0];
  const { width: w, height: h } = first;
  const m = model.size_multiple;
  const padH = roundUp(h, m) - h, padW = roundUp(w, m) - w;
  const padded = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, pad(v, padH, padW)]));
  const hp = h + padH, wp = w + padW;
  let out;
  if (!model.tile || hp * wp <= (model.tile + 2 * model.margin) ** 2) {
    out = await runGraph(session, padded);
  } else {
    for (const [y0, y1] of spans(hp, model.tile, m)) {
      const ey0 = Math.max(0, y0 - model.margin), ey1 = Math.min(hp, y1 + model.margin);
      for (const [x0, x1] of spans(wp, model.tile, m)) {
        const ex0 = Math.max(0, x0 - model.margin), ex1 = Math.min(wp, x1 + model.margin);
        const parts = Object.fromEntries(Object.entries(padded).map(([k, v]) => [k, crop(v, ey0, ey1, ex0, ex1)]));
        const res = await runGraph(session, parts);
        if (!out) out = { width: wp, height: hp, channels: res.channels, data: new Uint8Array(res.channels * hp * wp) };
        paste(out, crop(res, y0 - ey0, y1 - ey0, x0 - ex0, x1 - ex0), y0, x0);
      }
    }
  }
  return padH || padW ? crop(out, 0, h, 0, w) : out;
}

function psnr(a, b) {
  let sum = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = a.data[i] - b.data[i];
    sum += d * d;
  }
  const mse = sum / a.data.length;
  return mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
}

// --------------------------------------------------------------------------------------
// Actions
// --------------------------------------------------------------------------------------

function setBusy(busy) {
  document.body.dataset.busy = busy ? "true" : "false";
  const ready = !busy && state.model !== null;
  $("hide-button").disabled = !ready;
  $("reveal-button").disabled = !ready;
  $("model").disabled = busy || !state.manifest;
}

function download(linkId, blob, name) {
  if (state.urls[linkId]) URL.revokeObjectURL(state.urls[linkId]);
  state.urls[linkId] = URL.createObjectURL(blob);
  $(linkId).href = state.urls[linkId];
  $(linkId).download = name;
}

const baseName = (name) => name.replace(/\.[^.]*$/, "") || "image";

async function pickImage(file, what) {
  const { imageData } = await decodeFile(file);
  return { file, bytes: null, ...toPlanar(imageData, state.model ? state.model.channels : 3), what };
}

async function hide() {
  if (!state.cover || !state.secret) throw new UserError("choose a cover image and a secret image first");
  const model = state.model;
  const start = performance.now();
  const { hide: session } = await sessionsFor(model);
  const cover = toPlanar((await decodeFile(state.cover.file)).imageData, model.channels);
  const decoded = await decodeFile(state.secret.file, cover.width, cover.height);
  const secret = toPlanar(decoded.imageData, model.channels);
  const stego = await apply(session, { cover, secret }, model);
  const blob = await encodePng(stego, null); // no tag: nothing marks a stego image
  timings.hide_ms = performance.now() - start;
  show(stego, "stego-view");
  const name = `${baseName(state.cover.file.name)}-stego.png`;
  download("stego-download", blob, name);
  state.made = { file: new File([blob], name, { type: "image/png" }) };
  const value = psnr(stego, cover);
  $("psnr").textContent = `Stego vs cover: PSNR ${value === Infinity ? "infinite" : value.toFixed(2)} dB`;
  $("stego-result").hidden = false;
  const resized = decoded.size[0] !== cover.width || decoded.size[1] !== cover.height
    ? ` (secret resized from ${decoded.size[0]}x${decoded.size[1]})` : "";
  setStatus(`Hidden: ${cover.width}x${cover.height} stego image in ${timings.hide_ms.toFixed(0)} ms${resized}.`);
}

/** Refuse a decodable file that cannot be a stego image of `model`: not a PNG, or tagged with another model. */
async function checkStego(file, model) {
  const { isPng, tag } = readPngTag(new Uint8Array(await file.arrayBuffer()));
  if (!isPng) {
    throw new UserError(`${file.name}: not a PNG; a stego image is a lossless PNG (JPEG and other lossy formats destroy the hidden image)`);
  }
  if (tag && tag !== model.name) {
    throw new UserError(`${file.name}: a stego image of model ${tag}, not of ${model.name}; choose ${tag} under Model`);
  }
}

async function reveal() {
  if (!state.stego) throw new UserError("choose a stego image first");
  const model = state.model;
  const file = state.stego.file;
  const start = performance.now();
  const { reveal: session } = await sessionsFor(model);
  const { imageData } = await decodeFile(file);
  await checkStego(file, model);
  const stego = toPlanar(imageData, model.channels);
  const revealed = await apply(session, { stego }, model);
  const blob = await encodePng(revealed, null);
  timings.reveal_ms = performance.now() - start;
  show(revealed, "revealed-view");
  download("revealed-download", blob, `${baseName(file.name)}-revealed.png`);
  $("revealed-result").hidden = false;
  setStatus(`Revealed: ${revealed.width}x${revealed.height} secret in ${timings.reveal_ms.toFixed(0)} ms.`);
}

/** Run an action with errors shown in one line and the controls disabled meanwhile. */
async function guarded(action) {
  clearError();
  setBusy(true);
  try {
    await action();
  } catch (err) {
    console.error(err);
    showError(err instanceof UserError ? err.message : `unexpected error: ${err && err.message ? err.message : err}`);
  } finally {
    setBusy(false);
  }
}

/** A picked file is checked (decoded) at once, so errors show before any button is pressed. */
function onPick(inputId, key) {
  const input = $(inputId);
  input.addEventListener("change", () => guarded(async () => {
    state[key] = null;
    const file = input.files && input.files[0];
    if (!file) return;
    const img = await pickImage(file, key);
    if (key === "stego" && state.model) await checkStego(file, state.model);
    state[key] = img;
    setStatus(`${key}: ${file.name} (${img.width}x${img.height})`);
  }));
  const zone = input.closest(".drop");
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer.files.length) {
      input.files = e.dataTransfer.files;
      input.dispatchEvent(new Event("change"));
    }
  });
}

async function main() {
  onPick("cover", "cover");
  onPick("secret", "secret");
  onPick("stego", "stego");
  $("hide-button").addEventListener("click", () => guarded(hide));
  $("reveal-button").addEventListener("click", () => guarded(reveal));
  $("use-stego").addEventListener("click", () => guarded(async () => {
    state.stego = state.made;
    setStatus(`stego: ${state.made.file.name} (made above); press Reveal`);
    $("reveal-button").focus();
  }));
  $("model").addEventListener("change", (e) => guarded(() => chooseModel(e.target.value)));
  await guarded(async () => {
    if (typeof ort === "undefined") {
      throw new UserError("vendor/ort.wasm.min.js is missing; build the page with 'make web'");
    }
    ort.env.wasm.wasmPaths = new URL("vendor/", document.baseURI).href;
    // One thread: threads need cross-origin isolation headers that static hosts lack, and on a
    // 2-core machine they made PNG encoding wait about 1 s (measured) without speeding the nets up.
    ort.env.wasm.numThreads = 1;
    state.manifest = await loadManifest();
    for (const m of state.manifest.models) $("model").add(new Option(`${m.name} (${m.arch})`, m.name));
    await chooseModel(state.manifest.models[0].name);
    timings.ready_ms = performance.now();
    setStatus(`Ready in ${(timings.ready_ms / 1000).toFixed(2)} s: model ${state.model.name}. Choose a cover and a secret.`);
  });
  document.body.dataset.state = state.model ? "ready" : "failed";
}

main();
