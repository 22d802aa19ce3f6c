// sgmat-emu.mjs — for tests on a device without subgroup matrices (SwiftShader): rewrites the
// source of a subgroup-matrix kernel written as dq_mms.wgsl is (int8 16 x 32 left / right
// matrices loaded from the workgroup array `sm` of packed i32 words through ldw / ldx, AS words a
// row; int32 16 x 16 results stored row-major with stride 16; `tid` the local invocation index)
// so that plain WGSL computes the same: a left or right matrix becomes its word offset in sm (both
// are 16 rows of 32 bytes), a result the 8 elements i = lane + 32 e (lane = tid % 32, the kernel's
// 32-wide subgroup) of its 16 x 16, computed with dot4I8Packed from sm; a store writes each
// invocation's 8 elements. Everything else of the kernel (staging, requantisation, scaling, the
// writes) runs as written. Not a test itself (Engine.create's subgroupMatrixEmulation option).
// The kernels' text as shipped (tools/embed-wgsl.mjs drops the spaces no token needs): every
// pattern below takes its spaces as optional.
export function emulateSgMat(src, name = 'kernel') {
  const sub = (re, to, what) => {
    const s = src.replace(re, to);
    if (s === src) throw new Error(`sgmat-emu: ${name} has no ${what}`);
    src = s;
  };
  sub('enable chromium_experimental_subgroup_matrix;\n', '', 'enable directive');
  src = src.replace(/diagnostic\(off, ?chromium\.subgroup_matrix_uniformity\);\n/, '');
  sub(/alias LM ?= ?[^;]*;/, 'alias LM = u32;', 'alias LM');
  sub(/alias RM ?= ?[^;]*;/, 'alias RM = u32;', 'alias RM');
  sub(/alias CM ?= ?[^;]*;/, 'alias CM = array<i32, 8>;', 'alias CM');
  sub(/fn ldw\(off: ?u32\) ?-> ?LM ?\{[^\n]*\}/, 'fn ldw(off: u32) -> LM { return off; }', 'ldw');
  sub(/fn ldx\(off: ?u32\) ?-> ?RM ?\{[^\n]*\}/, 'fn ldx(off: u32) -> RM { return off; }', 'ldx');
  sub(/subgroupMatrixMultiplyAccumulate\(/g, 'emu_mma(', 'products');
  src = src.replace(/subgroupMatrixScalarMultiply\(/g, 'emu_smul(');
  sub(/subgroupMatrixStore<row_major>\(&sm, ?([^,]+), ?(\w+), ?16u\);/g, 'emu_store($1, $2);', 'stores');
  sub(/(@builtin\(local_invocation_index\) ?tid: ?u32\) ?\{\n)/, '$1  emu_lane = tid % 32u;\n', 'entry point');
  if (/subgroupMatrix|subgroup_matrix/.test(src)) throw new Error(`sgmat-emu: ${name} uses a subgroup-matrix builtin this emulation lacks`);
  return src + `
var<private> emu_lane: u32;
fn emu_mma(a: LM, b: RM, c: CM) -> CM {
  var r = c;
  for (var e = 0u; e < 8u; e++) {
    let i = emu_lane + 32u * e;
    var s = 0;
    for (var k = 0u; k < 8u; k++) { s += dot4I8Packed(bitcast<u32>(sm[a + (i / 16u) * AS + k]), bitcast<u32>(sm[b + (i % 16u) * AS + k])); }
    r[e] += s;
  }
  return r;
}
fn emu_smul(c: CM, s: i32) -> CM {
  var r = c;
  for (var e = 0u; e < 8u; e++) { r[e] = c[e] * s; }
  return r;
}
fn emu_store(off: u32, c: CM) { for (var e = 0u; e < 8u; e++) { sm[off + emu_lane + 32u * e] = c[e]; } }
`;
}
