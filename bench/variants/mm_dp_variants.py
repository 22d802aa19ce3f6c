#!/usr/bin/python3
# mm_dp_variants.py — writes candidates for src/webgpu/kernels/mm_dp.wgsl for bench/kernel-bench.mjs
# (--dp-variant FILE): the shipped kernel's scheme (TR x TT tiles, K in half blocks staged in
# workgroup memory, rows and tokens swizzled) with RI rows x TJ tokens an invocation
# (TR TT / (RI TJ) invocations) and the block's integer sums kept as two int32 (hi, lo) or as one
# (256 hi + lo added every 16 weights: "c"). The 64 x 64 ones are drop-ins for the host's grid.
#   usage: /usr/bin/python3 bench/variants/mm_dp_variants.py OUT_DIR   -> OUT_DIR/v{RI}x{TJ}[c].wgsl
import os
import sys
def gen(TR, TT, RI, TJ, comb):
    NTH = TR * TT // (RI * TJ)
    RG = TR // RI          # row groups (rg = tid % RG)
    TG = TT // TJ          # token groups
    PW = NTH // TR         # threads per staged row (1, 2, 4)
    PX = NTH // TT         # threads per staged token
    WV = 4 // PW           # weight vec4s a thread stages
    XV = 8 // PX           # input vec4s a thread stages: hi XV/2 then lo XV/2
    H = XV // 2
    assert NTH >= TR and NTH <= 256 and 2 <= XV <= 8
    L = []
    a = L.append
    a(f"// tile: {TR} x {TT}")
    a(f"// variant: {RI} rows x {TJ} tokens an invocation, {NTH} invocations{', one int32 sum' if comb else ''}")
    a("override RESID: bool = false;\noverride LO: u32 = 0u;\noverride SC: u32 = 0u;\n")
    a(f"const SMV = {TR * 4 + TT * 8}u;")
    a(f"const TR = {TR}u;\nconst TT = {TT}u;\nconst XB = {TR * 4}u;\n")
    a("""@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> XQ: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<uniform> P: Params;
@group(0) @binding(4) var<uniform> S: Step;

var<workgroup> sm: array<vec4<u32>, SMV>;
var<workgroup> wd: array<f32, TR>;
var<workgroup> ws: array<f32, TR>;
var<workgroup> xd: array<f32, TT>;

fn pm1(nib: u32) -> u32 {
  let e = ((nib & 15u) * 0x00204081u) & 0x01010101u;
  return 0xFFFFFFFFu ^ (e * 0xFEu);
}

fn dot16(a: i32, w: vec4<u32>, x: vec4<u32>) -> i32 {
  var s = a + dot4I8Packed(w.x, x.x);
  s += dot4I8Packed(w.y, x.y);
  s += dot4I8Packed(w.z, x.z);
  s += dot4I8Packed(w.w, x.w);
  return s;
}
""")
    a(f"@compute @workgroup_size({NTH})")
    a("fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {")
    a("  let t0 = wg.y * TT;\n  let nb = P.cols / 128u;\n  let kv = P.cols / 16u;")
    a(f"  let sr = tid / {PW}u;\n  let sp = tid % {PW}u;\n  let xr = tid / {PX}u;\n  let xp = tid % {PX}u;")
    a("  let rbase = P.w_off + min(wg.x * TR + sr, P.rows - 1u) * P.row_bytes;")
    a(f"  let xrow = (t0 + xr) * kv + {H}u * xp;")
    a("  let xs = XB + xr * 8u;\n  let xz = xr & 3u;\n  let rz = (sr >> 1u) & 3u;")
    a(f"  let rg = tid % {RG}u;\n  let tg = tid / {RG}u;\n  let sw = (rg >> 1u) & 3u;\n  let tz = tg & 3u;")
    a(f"  var acc: array<vec4<f32>, {RI * TJ // 4}>;")
    if comb:
        a(f"  var sq: array<vec4<i32>, {RI * TJ // 4}>;")
        a(f"  for (var i = 0u; i < {RI * TJ // 4}u; i++) {{ acc[i] = vec4<f32>(0.0); sq[i] = vec4<i32>(0); }}")
    else:
        a(f"  var hi: array<vec4<i32>, {RI * TJ // 4}>;\n  var lo: array<vec4<i32>, {RI * TJ // 4}>;")
        a(f"  for (var i = 0u; i < {RI * TJ // 4}u; i++) {{ acc[i] = vec4<f32>(0.0); hi[i] = vec4<i32>(0); lo[i] = vec4<i32>(0); }}")
    a(f"  var wv: array<u32, 5>;\n  var xa: array<vec4<u32>, {XV}>;\n  var dn = 0.0;")
    a("  {\n    let w0 = rbase / 4u;\n    for (var i = 0u; i < 5u; i++) { wv[i] = W[w0 + i]; }")
    a(f"    for (var e = 0u; e < {H}u; e++) {{ xa[e] = XQ[xrow + e]; xa[{H}u + e] = XQ[LO / 4u + xrow + e]; }}")
    a("    if (tid < TT) { let si = SC + (t0 + tid) * nb; dn = bitcast<f32>(XQ[si / 4u][si % 4u]); }\n  }")
    a("  for (var st = 0u; st < 2u * nb; st++) {\n    let b = st / 2u;\n    let h = st % 2u;")
    a("    let odd = ((rbase + b * 18u) & 2u) != 0u;")
    a("    if (h == 0u && sp == 0u) {\n      let sv = unpack2x16float(wv[0]);\n      wd[sr] = select(sv.x, sv.y, odd);\n      var pc = 0u;")
    a("      for (var i = 0u; i < 4u; i++) { pc += countOneBits(select((wv[i] >> 16u) | (wv[i + 1u] << 16u), wv[i + 1u], odd)); }")
    a("      ws[sr] = 128.0 * f32(2 * i32(pc) - 128);\n    }")
    a("    if (h == 0u && tid < TT) { xd[tid] = dn; }")
    # weight staging: thread's WV vec4s: vec4 index v = sp*WV + e (0..3); vec4 v = 16 weights = half-word (v%2) of word 2h + v/2
    a(f"    for (var e = 0u; e < {WV}u; e++) {{")
    a(f"      let v = sp * {WV}u + e;")
    a("      let wi = 2u * h + v / 2u;")
    a("      let bits = select((wv[wi] >> 16u) | (wv[wi + 1u] << 16u), wv[wi + 1u], odd) >> (16u * (v % 2u));")
    a("      sm[sr * 4u + (v ^ rz)] = vec4<u32>(pm1(bits), pm1(bits >> 4u), pm1(bits >> 8u), pm1(bits >> 12u));\n    }")
    a(f"    for (var e = 0u; e < {H}u; e++) {{")
    a(f"      sm[xs + (({H}u * xp + e) ^ xz)] = xa[e];")
    a(f"      sm[xs + 4u + (({H}u * xp + e) ^ xz)] = xa[{H}u + e];\n    }}")
    a("    workgroupBarrier();")
    a("    if (st + 1u < 2u * nb) {\n      let nbk = (st + 1u) / 2u;\n      let nh = (st + 1u) % 2u;\n      if (nh == 0u) {")
    a("        let w0 = (rbase + nbk * 18u) / 4u;\n        for (var i = 0u; i < 5u; i++) { wv[i] = W[w0 + i]; }")
    a("        if (tid < TT) { let si = SC + (t0 + tid) * nb + nbk; dn = bitcast<f32>(XQ[si / 4u][si % 4u]); }\n      }")
    a("      let o = xrow + nbk * 8u + nh * 4u;")
    a(f"      for (var e = 0u; e < {H}u; e++) {{ xa[e] = XQ[o + e]; xa[{H}u + e] = XQ[LO / 4u + o + e]; }}\n    }}")
    a("    for (var q = 0u; q < 4u; q++) {")
    a(f"      var xh: array<vec4<u32>, {TJ}>;\n      var xl: array<vec4<u32>, {TJ}>;")
    a(f"      for (var j = 0u; j < {TJ}u; j++) {{")
    a(f"        xh[j] = sm[XB + (tg + {TG}u * j) * 8u + (q ^ tz)];")
    a(f"        xl[j] = sm[XB + (tg + {TG}u * j) * 8u + 4u + (q ^ tz)];\n      }}")
    a(f"      for (var i = 0u; i < {RI}u; i++) {{")
    a(f"        let w = sm[(rg + {RG}u * i) * 4u + (q ^ sw)];")
    for jj in range(TJ // 4):
        idx = f"i * {TJ // 4}u + {jj}u" if TJ > 4 else "i"
        xs4 = [f"{4*jj+k}" for k in range(4)]
        if comb:
            a(f"        {{ let hv = vec4<i32>(" + ", ".join(f"dot16(0, w, xh[{k}])" for k in xs4) + ");")
            a(f"          let c = sq[{idx}] + hv * 256;")
            a(f"          sq[{idx}] = vec4<i32>(" + ", ".join(f"dot16(c.{'xyzw'[n]}, w, xl[{k}])" for n, k in enumerate(xs4)) + "); }")
        else:
            a(f"        hi[{idx}] = vec4<i32>(" + ", ".join(f"dot16(hi[{idx}].{'xyzw'[n]}, w, xh[{k}])" for n, k in enumerate(xs4)) + ");")
            a(f"        lo[{idx}] = vec4<i32>(" + ", ".join(f"dot16(lo[{idx}].{'xyzw'[n]}, w, xl[{k}])" for n, k in enumerate(xs4)) + ");")
    a("      }\n    }")
    a("    if (h == 1u) {")
    a(f"      for (var jj = 0u; jj < {TJ // 4}u; jj++) {{")
    a(f"        let dx = vec4<f32>(xd[tg + {TG}u * (4u * jj)], xd[tg + {TG}u * (4u * jj + 1u)], xd[tg + {TG}u * (4u * jj + 2u)], xd[tg + {TG}u * (4u * jj + 3u)]);")
    a(f"        for (var i = 0u; i < {RI}u; i++) {{")
    a(f"          let r = rg + {RG}u * i;\n          let k = i * {TJ // 4}u + jj;")
    if comb:
        a("          acc[k] += (wd[r] * dx) * (vec4<f32>(sq[k]) + ws[r]);\n          sq[k] = vec4<i32>(0);")
    else:
        a("          acc[k] += (wd[r] * dx) * (vec4<f32>(hi[k] * 256 + lo[k]) + ws[r]);\n          hi[k] = vec4<i32>(0);\n          lo[k] = vec4<i32>(0);")
    a("        }\n      }\n    }")
    a("    workgroupBarrier();\n  }")
    a(f"  for (var i = 0u; i < {RI}u; i++) {{")
    a(f"    let r = wg.x * TR + rg + {RG}u * i;\n    if (r >= P.rows) {{ continue; }}")
    a(f"    for (var j = 0u; j < {TJ}u; j++) {{")
    a(f"      let t = t0 + tg + {TG}u * j;")
    a("      if (t < S.n) {\n        let o = P.out_off + t * P.out_stride + P.row0 + r;")
    a(f"        var y = acc[i * {TJ // 4}u + j / 4u][j % 4u];")
    a("        if (RESID) { y += Y[o]; }\n        Y[o] = y;\n      }\n    }\n  }\n}")
    return "\n".join(L) + "\n"
out = sys.argv[1] if len(sys.argv) > 1 else '.'
os.makedirs(out, exist_ok=True)
for TR, TT, RI, TJ, comb in [(64, 64, 8, 4, 0), (64, 64, 8, 4, 1), (64, 64, 8, 8, 0), (64, 64, 8, 8, 1),
                             (64, 64, 4, 8, 0), (64, 64, 4, 4, 0), (128, 32, 8, 4, 0), (128, 64, 8, 4, 0),
                             (64, 32, 4, 4, 0)]:
    name = f"v{RI}x{TJ}{'c' if comb else ''}" + ("" if (TR, TT) == (64, 64) else f"-{TR}x{TT}")
    with open(os.path.join(out, name + ".wgsl"), "w") as f:
        f.write(gen(TR, TT, RI, TJ, comb))
