// quant.wgsl — the input of a prompt chunk's product, quantised for the subgroup-matrix kernel
// (mm_sg.wgsl). Per token and block of 128 inputs (one Q1_0 block of the weights): q = round(x / d)
// with d = max|x| / 32767, kept as two int8 planes, hi = q >> 8 and lo = (q & 255) - 128, so that
// q = 256 hi + lo + 128 (16 bits: a product's relative error stays near 1e-5), and the scale d.
// One 32-wide subgroup per (token, block), four a workgroup (this kernel runs only where
// mm_sg.wgsl does: 32-wide subgroups laid out contiguously). XQ: the hi plane [tokens][cols] bytes
// from word 0, the lo plane from word LO, the scales [tokens][cols / 128] from word SC (the host
// sizes XQ for the widest input and the chunk's tokens rounded up to 32). The writing is xq.wgsl's.

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
  xq_put(x, t, b, P.cols, lane, ok, tid);
}
