#!/usr/bin/python3
"""prepare.py — builds the demo model's training text from the King James Bible.

Reads the KJV text shipped by Debian's bible-kjv-text package (through the `bible` program of the
bible-kjv package), drops the book/chapter headings and the verse numbers, and writes, one verse
per line:
  OUT/train.txt  the first 95% of the verses (Genesis 1:1 onwards), followed by ChatML dialogues
                 made from them, so that a chat prompt gets a verse-like reply ending in <|im_end|>;
  OUT/valid.txt  the last 5% of the verses, plain text only (the held-out set for perplexity);
  OUT/prompts.json  the prompts whose continuations the trainer prints.
It is deterministic (fixed seed, no dependence on the environment) and needs no third-party
Python module. It is not a tokenizer: tokenize.mjs turns these files into token ids.
"""
import argparse
import json
import os
import random
import re
import subprocess
import sys

HELD_OUT = 0.05      # fraction of verses at the end kept for evaluation
CHAT_EVERY = 16      # one ChatML dialogue for every this many training verses
SEED = 1611
PROMPTS = [
    "And God said",
    "In the beginning",
    "The LORD is my shepherd",
    "And Jesus answered and said unto them,",
    "<|im_start|>user\nWhat is love?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\nHello! Who are you?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
]


def read_verses():
    # -l with a huge width: one verse per line, no wrapping.
    text = subprocess.run(["bible", "-l1000000", "Gen1:1-Rev22:21"], check=True,
                          capture_output=True, text=True).stdout
    verses = []
    for line in text.splitlines():
        m = re.match(r"^\s+\d+ (.*\S)\s*$", line)
        if m:  # verse lines are indented and numbered; headings ("Genesis 1") are not
            verses.append(m.group(1))
    return verses


def chat(rng, user, reply):
    # What Qwen3's chat template renders for one user turn plus the generation prompt, followed by
    # the reply. Half of the dialogues carry the empty think block that the template adds when
    # thinking is off, so both prompt forms work.
    think = "<think>\n\n</think>\n\n" if rng.random() < 0.5 else ""
    return ("<|im_start|>user\n" + user + "<|im_end|>\n<|im_start|>assistant\n" + think + reply
            + "<|im_end|>")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="output folder")
    a = ap.parse_args()
    verses = read_verses()
    if len(verses) != 31102:
        sys.exit("prepare: expected 31102 KJV verses, got %d" % len(verses))
    n_valid = int(len(verses) * HELD_OUT)
    train, valid = verses[:-n_valid], verses[-n_valid:]
    rng = random.Random(SEED)
    # The dialogues come after all the plain verses, so that plain text never runs on into a
    # dialogue and a training window rarely mixes the two.
    lines = list(train)
    for _ in range(len(train) // CHAT_EVERY):
        # The user says a verse; the assistant answers with the verse that follows it.
        j = rng.randrange(len(train) - 1)
        lines.append(chat(rng, train[j], train[j + 1]))
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "train.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(a.out, "valid.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(valid) + "\n")
    with open(os.path.join(a.out, "prompts.json"), "w", encoding="utf-8") as f:
        json.dump(PROMPTS, f, indent=1)
    print("prepare: %d train verses (+%d dialogues), %d held-out verses (from '%s')"
          % (len(train), len(lines) - len(train), len(valid), valid[0][:40]))


if __name__ == "__main__":
    main()
