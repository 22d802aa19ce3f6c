#!/usr/bin/env python3
"""dq_mms_variants.py — writes tile candidates of src/webgpu/kernels/dq_mms.wgsl (32 rows x 64
tokens, two subgroups) into bench/variants/: dq_mms-64x64.wgsl, four subgroups over 64 rows x 64
tokens (37,632 bytes of workgroup memory; the host needs MMG_TR 64 and MMG_WG_MEM 37632 in
src/webgpu/backend_webgpu.c). The rewriting is textual and checks that each edit applies.
  usage: /usr/bin/python3 bench/variants/dq_mms_variants.py"""
import os

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')
src = open(os.path.join(root, 'src/webgpu/kernels/dq_mms.wgsl')).read()


def rep(s, a, b, cnt=1):
    assert s.count(a) == cnt, (a, s.count(a))
    return s.replace(a, b)


def t64x64(s):
    s = rep(s, "// dq_mms.wgsl — the generic plan's prompt product",
            "// tile: 64 x 64 — a candidate for dq_mms.wgsl written by bench/variants/dq_mms_variants.py (copy it\n"
            "// over the kernel and set MMG_TR 64, MMG_WG_MEM 37632): four subgroups over 64 rows x 64 tokens.\n"
            "// dq_mms.wgsl — the generic plan's prompt product")
    s = rep(s, """const TR = 32u;                 // rows of a tile
const TT = 64u;                 // tokens of a tile: 32 a subgroup
const AS = 36u;                 // words per staged row of 128 int8 (with padding)
const WL = 1152u;               // TR * AS: the weights' low plane
const XO = 2304u;               // 2 * TR * AS: the input planes, hi then lo
const XL = 4608u;               // XO + TT * AS: the input's lo plane
const SMW = 6912u;              // 2 TR AS + 2 TT AS staged, >= 2 * 2048 of results""",
            """const TR = 64u;                 // rows of a tile: 32 a subgroup
const TT = 64u;                 // tokens of a tile: 32 a subgroup
const AS = 36u;                 // words per staged row of 128 int8 (with padding)
const WL = 2304u;               // TR * AS: the weights' low plane
const XO = 4608u;               // 2 * TR * AS: the input planes, hi then lo
const XL = 6912u;               // XO + TT * AS: the input's lo plane
const SMW = 9216u;              // 2 TR AS + 2 TT AS staged, >= 4 * 2048 of results""")
    s = rep(s, "@compute @workgroup_size(64)", "@compute @workgroup_size(128)")
    s = rep(s, "  let sg = tid / 32u;           // subgroup: tokens 32 sg .. 32 sg + 31 of the tile",
            "  let sg = tid / 32u;           // subgroup: rows 32 (sg % 2) .., tokens 32 (sg / 2) .. of the tile\n"
            "  let sr0 = (sg % 2u) * 32u;\n  let st0 = (sg / 2u) * 32u;")
    s = rep(s, """    var xv: array<vec4<i32>, 16>;
    for (var k = 0u; k < 16u; k++) {
      let i = tid + 64u * k;              // [plane 2][token 64][vec4 8]""", """    var xv: array<vec4<i32>, 8>;
    for (var k = 0u; k < 8u; k++) {
      let i = tid + 128u * k;             // [plane 2][token 64][vec4 8]""")
    s = rep(s, """    let si = SC + (t0 + tid) * nb + b;
    let dx = bitcast<f32>(XQ[si / 4u][si % 4u]);""", """    var dx = 0.0;
    if (tid < TT) {
      let si = SC + (t0 + tid) * nb + b;
      dx = bitcast<f32>(XQ[si / 4u][si % 4u]);
    }""")
    s = rep(s, """    for (var k = 0u; k < 16u; k++) {
      let i = tid + 64u * k;
      let o = XO""", """    for (var k = 0u; k < 8u; k++) {
      let i = tid + 128u * k;
      let o = XO""")
    s = rep(s, "    xd[tid] = dx;", "    if (tid < TT) { xd[tid] = dx; }")
    i = s.index("    switch (sg) {")
    j = s.index("    workgroupBarrier();\n    // Matrix m at mb")
    body = s[i:j]
    c0 = body[body.index("      case 0u: {"):body.index("      default: {")]

    def case(label, w, x):
        t = c0.replace("      case 0u: {", "      %s: {" % label)
        if w:
            t = t.replace("ldw(16u * AS + ", "ldw(48u * AS + ").replace("ldw(ks * 8u)", "ldw(32u * AS + ks * 8u)")
            t = t.replace("ldw(WL + 16u * AS + ", "ldw(WL + 48u * AS + ").replace("ldw(WL + ks * 8u)", "ldw(WL + 32u * AS + ks * 8u)")
        if x:
            for p in ("XO", "XL"):
                t = t.replace("ldx(%s + 16u * AS + " % p, "ldx(%s + 48u * AS + " % p).replace("ldx(%s + ks * 8u)" % p, "ldx(%s + 32u * AS + ks * 8u)" % p)
        return t
    s = s[:i] + "    switch (sg) {\n" + case("case 0u", 0, 0) + case("case 1u", 1, 0) + case("case 2u", 0, 1) + \
        case("default", 1, 1) + "    }\n" + s[j:]
    s = rep(s, "      let sx = xd[sg * 32u + tt * 16u + j];", "      let sx = xd[st0 + tt * 16u + j];")
    s = rep(s, "          let r = rt * 16u + i;", "          let r = sr0 + rt * 16u + i;")
    s = rep(s, "  let r = r0 + lane;", "  let r = r0 + sr0 + lane;")
    s = rep(s, "      let t = t0 + sg * 32u + tl;", "      let t = t0 + st0 + tl;")
    return s


out = os.path.join(root, 'bench/variants/dq_mms-64x64.wgsl')
open(out, 'w').write(t64x64(src))
print('wrote', os.path.relpath(out, root))
