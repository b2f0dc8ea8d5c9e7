"""Security: keys and key streams, keyed scrambling, keyless leakage attacks, steganalysis, steg analyze."""
