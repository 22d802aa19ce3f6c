#!/usr/bin/python3
"""train.py — trains the tiny 1-bit Qwen3 demo model and exports it for build/mkmodel.

What it is: a small, deterministic PyTorch trainer (CPU, Debian's python3-torch) for a model of
exactly the architecture onebit runs (Qwen3: RMSNorm, QK-norm, NeoX RoPE, grouped-query causal
attention, SwiGLU, tied embeddings), whose every 2-D matrix is used in the forward pass as it will
be stored in Q1_0: per block of 128 consecutive weights along the input dimension, sign(w) * d
with d = mean |w| of the block (w >= 0 gives +d), d rounded to fp16. Gradients pass through the
binarisation unchanged (straight-through estimator); norm weights stay float.

Only tokens that occur in the training text get embedding rows. Every other row of the
151,936-row embedding is exported as zeros (d = 0), so its logit is exactly 0 in the engine; the
loss counts those rows exactly, as one extra term log(N_unseen) + 0 in the log-sum-exp. Training
and the engine therefore compute the same full-vocabulary softmax.

What it is not: a general trainer, or a tokenizer (tokenize.mjs makes the token files), or a
GGUF writer (build/mkmodel turns the exported manifest into GGUF).

Usage: train.py --data DIR --out DIR [--steps N ...]; DIR holds train.u32 and valid.u32.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

N_VOCAB = 151936   # Qwen3's embedding rows (tokenizer ids plus padding)
QK = 128           # Q1_0 block size along the input dimension
IM_END = 151645    # <|im_end|>


# ---- 1-bit weights --------------------------------------------------------------------------------

def binarise(w):
    """w: (rows, cols), cols % 128 == 0 -> the Q1_0 value of w, with a straight-through gradient."""
    rows, cols = w.shape
    b = w.reshape(rows, cols // QK, QK)
    d = b.abs().mean(dim=2, keepdim=True)               # (rows, cols/128, 1) one scale a block
    d = d.half().float()                                # stored as fp16 in the file
    q = torch.where(b >= 0, d, -d).reshape(rows, cols)  # sign bit: w >= 0 -> +d
    return w + (q - w).detach()


# ---- model ----------------------------------------------------------------------------------------

def rms_norm(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


class Model(torch.nn.Module):
    """Qwen3 with 1-bit matrices. Linear weights are kept in torch's (out, in) layout."""

    def __init__(self, hp, n_seen, emb_std=0.02):
        super().__init__()
        self.hp = hp
        e, hd = hp["n_embd"], hp["head_dim"]
        nq, nkv, ff = hp["n_head"] * hd, hp["n_head_kv"] * hd, hp["n_ff"]
        P = torch.nn.Parameter
        std = 0.02
        self.tok = P(torch.randn(n_seen, e) * emb_std)             # (n_seen, n_embd)
        self.layers = torch.nn.ModuleList()
        for _ in range(hp["n_layer"]):
            L = torch.nn.Module()
            L.attn_norm = P(torch.ones(e))
            L.q = P(torch.randn(nq, e) * std)                       # (n_head*head_dim, n_embd)
            L.k = P(torch.randn(nkv, e) * std)                      # (n_kv*head_dim, n_embd)
            L.v = P(torch.randn(nkv, e) * std)
            L.q_norm = P(torch.ones(hd))
            L.k_norm = P(torch.ones(hd))
            L.o = P(torch.randn(e, nq) * std)                       # (n_embd, n_head*head_dim)
            L.ffn_norm = P(torch.ones(e))
            L.gate = P(torch.randn(ff, e) * std)                    # (n_ff, n_embd)
            L.up = P(torch.randn(ff, e) * std)
            L.down = P(torch.randn(e, ff) * std)                    # (n_embd, n_ff)
            self.layers.append(L)
        self.out_norm = P(torch.ones(e))
        # NeoX RoPE tables: pair (i, i + head_dim/2) turns by pos * theta^(-2i/head_dim).
        inv = hp["rope_theta"] ** (-torch.arange(0, hd // 2, dtype=torch.float64) * 2 / hd)
        ang = torch.arange(hp["n_ctx"], dtype=torch.float64)[:, None] * inv[None, :]
        self.register_buffer("cos", ang.cos().float(), persistent=False)  # (n_ctx, head_dim/2)
        self.register_buffer("sin", ang.sin().float(), persistent=False)

    def rope(self, x, t0):
        """x: (B, heads, T, head_dim) -> same, rotated for positions t0 .. t0+T-1."""
        T, h = x.shape[2], x.shape[3] // 2
        c, s = self.cos[t0:t0 + T], self.sin[t0:t0 + T]
        x1, x2 = x[..., :h], x[..., h:]
        return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1)

    def binarised(self):
        """The 1-bit value of every matrix, as the engine will see it."""
        W = {"tok": binarise(self.tok), "layers": []}
        for L in self.layers:
            W["layers"].append({n: binarise(getattr(L, n))
                                for n in ("q", "k", "v", "o", "gate", "up", "down")})
        return W

    def forward(self, idx, W=None, cache=None):
        """idx: (B, T) seen-token indices, -1 for a token without a row (its embedding is the zero
        vector, as in the exported file) -> final hidden states (B, T, n_embd).
        cache: optional list of per-layer (k, v) for incremental decoding (sampler only)."""
        hp = self.hp
        W = W or self.binarised()
        B, T = idx.shape
        nh, nkv, hd, eps = hp["n_head"], hp["n_head_kv"], hp["head_dim"], hp["rms_eps"]
        t0 = 0 if not cache or cache[0] is None else cache[0][0].shape[2]
        x = W["tok"][idx.clamp(min=0)] * (idx >= 0)[..., None]       # (B, T, n_embd)
        mask = torch.full((T, t0 + T), float("-inf"), device=idx.device).triu(t0 + 1)  # causal
        for li, (L, w) in enumerate(zip(self.layers, W["layers"])):
            h = rms_norm(x, L.attn_norm, eps)
            q = (h @ w["q"].t()).view(B, T, nh, hd).transpose(1, 2)    # (B, nh, T, hd)
            k = (h @ w["k"].t()).view(B, T, nkv, hd).transpose(1, 2)   # (B, nkv, T, hd)
            v = (h @ w["v"].t()).view(B, T, nkv, hd).transpose(1, 2)
            q = self.rope(rms_norm(q, L.q_norm, eps), t0)
            k = self.rope(rms_norm(k, L.k_norm, eps), t0)
            if cache is not None:
                if cache[li] is not None:
                    k = torch.cat([cache[li][0], k], dim=2)
                    v = torch.cat([cache[li][1], v], dim=2)
                cache[li] = (k, v)
            # Query head j reads kv head j // (nh/nkv), as llama.cpp broadcasts.
            k = k.repeat_interleave(nh // nkv, dim=1)
            v = v.repeat_interleave(nh // nkv, dim=1)
            att = (q @ k.transpose(-1, -2)) / math.sqrt(hd) + mask     # (B, nh, T, t0+T)
            y = att.softmax(-1) @ v                                    # (B, nh, T, hd)
            x = x + y.transpose(1, 2).reshape(B, T, nh * hd) @ w["o"].t()
            h = rms_norm(x, L.ffn_norm, eps)
            x = x + (F.silu(h @ w["gate"].t()) * (h @ w["up"].t())) @ w["down"].t()
        return rms_norm(x, self.out_norm, eps)

    def logits(self, hidden, W):
        """(…, n_embd) -> logits of the seen tokens (…, n_seen); every unseen token's logit is 0."""
        return hidden @ W["tok"].t()


def full_vocab_nll(logits, target, log_n_unseen):
    """Exact cross-entropy over all 151,936 tokens. logits: (N, n_seen); target: (N,) seen index,
    or -1 for a token that has no row (its logit is 0). Returns (N,) nats."""
    lse = torch.logaddexp(torch.logsumexp(logits, dim=-1),
                          torch.full_like(logits[:, 0], log_n_unseen))
    tl = logits.gather(1, target.clamp(min=0)[:, None])[:, 0]
    tl = torch.where(target >= 0, tl, torch.zeros_like(tl))
    return lse - tl


# ---- data, evaluation, sampling -------------------------------------------------------------------

def evaluate(model, data, n_ctx, log_nu, max_windows=None, batch=16):
    """Perplexity over non-overlapping windows of n_ctx+1 tokens (each predicts n_ctx tokens)."""
    model.eval()
    n_win = (len(data) - 1) // n_ctx
    if max_windows:
        n_win = min(n_win, max_windows)
    tot, cnt = 0.0, 0
    with torch.no_grad():
        W = model.binarised()
        for b0 in range(0, n_win, batch):
            starts = range(b0 * n_ctx, min(n_win, b0 + batch) * n_ctx, n_ctx)
            xb = torch.stack([data[s:s + n_ctx + 1] for s in starts])
            h = model(xb[:, :-1], W)
            nll = full_vocab_nll(model.logits(h, W).reshape(-1, W["tok"].shape[0]),
                                 xb[:, 1:].reshape(-1), log_nu)
            tot += nll.sum().item()
            cnt += nll.numel()
    model.train()
    return math.exp(tot / cnt), cnt


def sample(model, seen_ids, prompt_ids, n, temp, rng, stop=None):
    """Generates up to n tokens after prompt_ids (global ids; one without a row reads as the zero
    vector, as in the engine) from the full-vocabulary distribution of the binarised model.
    temp 0 = greedy. Drawing a token without a row ends the sample with -1 (printed as <?>)."""
    local = {int(t): i for i, t in enumerate(seen_ids)}
    n_unseen = N_VOCAB - len(seen_ids)
    out = []
    with torch.no_grad():
        W = model.binarised()
        cache = [None] * len(model.layers)
        dev = model.out_norm.device
        x = torch.tensor([[local.get(t, -1) for t in prompt_ids]], device=dev)
        for _ in range(n):
            if (cache[0] is not None and cache[0][0].shape[2] >= model.hp["n_ctx"]):
                break
            h = model(x, W, cache)[:, -1]
            lg = model.logits(h, W)[0].double()
            if temp == 0:
                nxt = int(lg.argmax())
                if lg[nxt] < 0:                  # an unseen token (logit 0) would win
                    out.append(-1)
                    break
            else:
                # Seen tokens plus one bucket holding all unseen ones (each logit 0).
                z = torch.cat([lg.cpu() / temp, torch.tensor([math.log(n_unseen)], dtype=lg.dtype)])
                p = torch.softmax(z, 0).numpy()
                i = rng.choice(len(p), p=p / p.sum())
                if i == len(seen_ids):
                    out.append(-1)
                    break
                nxt = i
            tok = int(seen_ids[nxt])
            out.append(tok)
            if stop is not None and tok == stop:
                break
            x = torch.tensor([[nxt]], device=dev)
    return out


# ---- main -----------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="folder with train.u32, valid.u32")
    ap.add_argument("--out", required=True, help="output folder (weights manifest, log)")
    ap.add_argument("--n-embd", type=int, default=256)
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--n-head-kv", type=int, default=2)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--n-ff", type=int, default=768)
    ap.add_argument("--n-ctx", type=int, default=256)
    ap.add_argument("--rope-theta", type=float, default=10000.0)
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--batch", type=int, default=16, help="sequences per step")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.0)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--wd", type=float, default=0.0)
    ap.add_argument("--emb-std", type=float, default=0.1, help="initial embedding spread")
    ap.add_argument("--seed", type=int, default=1611)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-every", type=int, default=400)
    ap.add_argument("--name", default="onebit-demo-kjv")
    ap.add_argument("--device", default="cpu", help="cpu (the documented run) or cuda")
    ap.add_argument("--load", help="model.pt of an earlier run: skip training, evaluate, sample")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.RandomState(a.seed)
    os.makedirs(a.out, exist_ok=True)
    logf = open(os.path.join(a.out, "train.log"), "w")

    def log(s):
        print(s, flush=True)
        logf.write(s + "\n")
        logf.flush()

    log("command: " + " ".join([sys.executable] + sys.argv))
    train_g = np.fromfile(os.path.join(a.data, "train.u32"), dtype=np.uint32).astype(np.int64)
    valid_g = np.fromfile(os.path.join(a.data, "valid.u32"), dtype=np.uint32).astype(np.int64)
    seen_ids = np.unique(train_g)                       # sorted global ids that get a row
    n_seen, n_unseen = len(seen_ids), N_VOCAB - len(seen_ids)
    log_nu = math.log(n_unseen)
    to_local = np.full(N_VOCAB, -1, dtype=np.int64)
    to_local[seen_ids] = np.arange(n_seen)
    dev = torch.device(a.device)
    if dev.type == "cuda":
        # Same result on every run: deterministic kernels, plain fp32 matrix products.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cuda.matmul.allow_tf32 = False
    train = torch.from_numpy(to_local[train_g]).to(dev)
    valid = torch.from_numpy(to_local[valid_g]).to(dev)
    log("data: %d train tokens, %d held-out tokens (%d of them never seen in training), "
        "%d seen token types, %d unseen rows" % (len(train), len(valid), int((valid < 0).sum()),
                                                 n_seen, n_unseen))

    # Baselines on the held-out tokens.
    counts = np.bincount(train_g, minlength=N_VOCAB).astype(np.float64)
    p_add1 = (counts + 1) / (counts.sum() + N_VOCAB)
    log("baseline: uniform over %d tokens: ppl %d; uniform over the %d seen tokens: ppl %d"
        % (N_VOCAB, N_VOCAB, n_seen, n_seen))
    log("baseline: unigram of the training tokens, add-one smoothed over all %d: held-out ppl %.2f"
        % (N_VOCAB, math.exp(-np.log(p_add1[valid_g]).mean())))
    vs = valid_g[to_local[valid_g] >= 0]
    p_ml = counts / counts.sum()
    log("baseline: unigram (maximum likelihood) on the held-out tokens seen in training: ppl %.2f"
        % math.exp(-np.log(p_ml[vs]).mean()))

    hp = {"name": a.name, "n_embd": a.n_embd, "n_layer": a.n_layer, "n_head": a.n_head,
          "n_head_kv": a.n_head_kv, "head_dim": a.head_dim, "n_ff": a.n_ff, "n_ctx": a.n_ctx,
          "rope_theta": a.rope_theta, "rms_eps": 1e-6, "tied": True}
    for dim in (a.n_embd, a.n_head * a.head_dim, a.n_ff):
        if dim % QK:
            sys.exit("train: every matrix input dimension must be a multiple of 128")
    model = Model(hp, n_seen, a.emb_std).to(dev)
    if a.load:
        ck = torch.load(a.load, map_location="cpu")
        if ck["hp"] != hp or not np.array_equal(ck["seen_ids"].numpy(), seen_ids):
            sys.exit("train: %s was trained with other hyperparameters or data" % a.load)
        model.load_state_dict(ck["model"])
        a.steps = 0
    n_par = sum(p.numel() for p in model.parameters())
    log("model: %s; %d trainable weights" % (json.dumps(hp), n_par))
    mats = [p for p in model.parameters() if p.dim() == 2]
    norms = [p for p in model.parameters() if p.dim() == 1]
    opt = torch.optim.AdamW([{"params": mats, "weight_decay": a.wd},
                             {"params": norms, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)

    # Deterministic data order: window starts drawn from the seeded generator.
    T = a.n_ctx
    t_start = time.time()
    for step in range(1, a.steps + 1):
        if step <= a.warmup:
            lr = a.lr * step / a.warmup
        else:
            f = (step - a.warmup) / max(1, a.steps - a.warmup)
            lr = a.lr * (a.min_lr_frac + (1 - a.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * f)))
        for g in opt.param_groups:
            g["lr"] = lr
        starts = rng.randint(0, len(train) - T - 1, size=a.batch)
        xb = torch.stack([train[s:s + T + 1] for s in starts.tolist()])  # (batch, T+1)
        W = model.binarised()
        h = model(xb[:, :-1], W)
        loss = full_vocab_nll(model.logits(h, W).reshape(-1, n_seen), xb[:, 1:].reshape(-1),
                              log_nu).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 50 == 0 or step == 1:
            el = time.time() - t_start
            log("step %5d  loss %.4f  ppl %8.2f  lr %.2e  %.0f s  %.0f tok/s"
                % (step, loss.item(), math.exp(loss.item()), lr, el, step * a.batch * T / el))
        if step % a.eval_every == 0 and step < a.steps:
            vp, _ = evaluate(model, valid, T, log_nu, max_windows=48)
            log("step %5d  held-out ppl (first 48 windows) %.2f" % (step, vp))
    train_time = time.time() - t_start

    vp, vn = evaluate(model, valid, T, log_nu)
    tp, tn = evaluate(model, train, T, log_nu, max_windows=len(valid) // T)
    log("final: held-out ppl %.3f over %d tokens; train ppl %.3f over the first %d train tokens; "
        "training %.1f s" % (vp, vn, tp, tn, train_time))

    if not a.load:
        torch.save({"model": model.state_dict(), "seen_ids": torch.from_numpy(seen_ids), "hp": hp},
                   os.path.join(a.out, "model.pt"))
    export(model.cpu(), seen_ids, hp, os.path.join(a.out, "weights"))
    log("exported: %s" % os.path.join(a.out, "weights", "manifest.json"))
    show_samples(model, seen_ids, a.data, log)


def show_samples(model, seen_ids, data, log):
    """Prints greedy and temperature-0.8 continuations of prepare.py's prompts from the
    binarised model (the engine's greedy output for the same model should match the first)."""
    try:
        with open(os.path.join(data, "prompts.ids.json")) as f:
            prompts = json.load(f)
        with open(os.path.join(data, "vocab.json")) as f:
            vocab = json.load(f)
    except OSError:
        log("samples: no prompts.ids.json / vocab.json in %s" % data)
        return
    rng = np.random.RandomState(7)
    text = lambda ids: "".join(vocab[t] if 0 <= t < len(vocab) else "<?>" for t in ids)
    for p in prompts:
        for temp in (0.0, 0.8):
            out = sample(model, seen_ids, p, 60, temp, rng, stop=IM_END)
            log("sample T=%.1f: %s|%s" % (temp, json.dumps(text(p))[1:-1], json.dumps(text(out))[1:-1]))


def export(model, seen_ids, hp, d):
    """Writes the binarised weights (float32) and manifest.json in GGUF names and dim order."""
    os.makedirs(d, exist_ok=True)
    tensors = []

    def put(name, t):
        # torch (out, in) row-major == GGUF shape [in, out] with ne0 = in contiguous.
        a = t.detach().float().contiguous().numpy().astype("<f4")
        a.tofile(os.path.join(d, name + ".f32"))
        shape = [a.shape[0]] if a.ndim == 1 else [a.shape[1], a.shape[0]]
        tensors.append({"name": name, "shape": shape, "file": name + ".f32"})

    with torch.no_grad():
        W = model.binarised()
        emb = torch.zeros(N_VOCAB, hp["n_embd"])     # unseen rows: zeros -> d = 0, logit 0
        emb[torch.from_numpy(seen_ids)] = W["tok"]
        put("token_embd.weight", emb)
        names = {"q": "attn_q", "k": "attn_k", "v": "attn_v", "o": "attn_output",
                 "gate": "ffn_gate", "up": "ffn_up", "down": "ffn_down"}
        for i, (L, w) in enumerate(zip(model.layers, W["layers"])):
            put("blk.%d.attn_norm.weight" % i, L.attn_norm)
            for k in ("q", "k", "v"):
                put("blk.%d.%s.weight" % (i, names[k]), w[k])
            put("blk.%d.attn_q_norm.weight" % i, L.q_norm)
            put("blk.%d.attn_k_norm.weight" % i, L.k_norm)
            put("blk.%d.attn_output.weight" % i, w["o"])
            put("blk.%d.ffn_norm.weight" % i, L.ffn_norm)
            for k in ("gate", "up", "down"):
                put("blk.%d.%s.weight" % (i, names[k]), w[k])
        put("output_norm.weight", model.out_norm)
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump({"hparams": hp, "tensors": tensors}, f, indent=1)


if __name__ == "__main__":
    main()
