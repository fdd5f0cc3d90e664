#!/usr/bin/env python3
"""Regenerates x25519_libsodium_box.json: for every Wycheproof X25519 input, the NaCl box
that libsodium (through PyNaCl) produces for a fixed message and nonce, or null where
libsodium refuses the key pair. Run: pip install pynacl && python3 gen_libsodium_box.py"""
import json
from pathlib import Path

from nacl.exceptions import CryptoError
from nacl.public import Box, PrivateKey, PublicKey

HERE = Path(__file__).parent
MESSAGE = b"tocsin cross-check against libsodium"
NONCE = bytes(range(24))

vectors = json.loads((HERE / "x25519_test.json").read_text())
out = {"message_hex": MESSAGE.hex(), "nonce_hex": NONCE.hex(), "boxes": []}
for group in vectors["testGroups"]:
    for test in group["tests"]:
        try:
            box = Box(PrivateKey(bytes.fromhex(test["private"])), PublicKey(bytes.fromhex(test["public"])))
            sealed = box.encrypt(MESSAGE, NONCE).ciphertext.hex()
        except CryptoError:
            sealed = None
        out["boxes"].append({"tcId": test["tcId"], "box": sealed})
(HERE / "x25519_libsodium_box.json").write_text(json.dumps(out, indent=1) + "\n")
