// quant.wgsl — the input of a prompt chunk's product, quantised for the subgroup-matrix kernel
// (mm_sg.wgsl). Per token and block of 128 inputs (one Q1_0 block of the weights): q = round(x / d)
// with d = max|x| / 32767, kept as two int8 planes, hi = q >> 8 and lo = (q & 255) - 128, so that
// q = 256 hi + lo + 128 (16 bits: a product's relative error stays near 1e-5), and the scale d.
// One 32-wide subgroup per (token, block), four a workgroup (this kernel runs only where
// mm_sg.wgsl does: 32-wide subgroups laid out contiguously). XQ: the hi plane [tokens][cols] bytes
// from word 0, the lo plane from word LO, the scales [tokens][cols / 128] from word SC (the host
// sizes XQ for the widest input and the chunk's tokens rounded up to 32).

override LO: u32 = 0u;
override SC: u32 = 0u;

@group(0) @binding(0) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> XQ: array<u32>;
@group(0) @binding(2) var<uniform> P: Params;
@group(0) @binding(3) var<uniform> S: Step;

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let nb = P.cols / 128u;
  let i = wg.x * 4u + tid / 32u;
  let lane = tid % 32u;
  let t = i / nb;
  let b = i % nb;
  let ok = t < S.n;
  var x = vec4<f32>(0.0);
  if (ok) { x = X[(P.in_off + t * P.in_stride) / 4u + b * 32u + lane]; }
  let a = abs(x);
  let amax = subgroupMax(max(max(a.x, a.y), max(a.z, a.w)));
  let d = amax / 32767.0;
  var inv = 0.0;
  if (d > 0.0) { inv = 1.0 / d; }
  if (ok) {
    let q = clamp(vec4<i32>(round(x * inv)), vec4<i32>(-32767), vec4<i32>(32767));
    let o = t * (P.cols / 4u) + b * 32u + lane;
    XQ[o] = pack4xI8(q >> vec4<u32>(8u));
    XQ[LO + o] = pack4xI8((q & vec4<i32>(255)) - vec4<i32>(128));
    if (lane == 0u) { XQ[SC + t * nb + b] = bitcast<u32>(d); }
  }
}
