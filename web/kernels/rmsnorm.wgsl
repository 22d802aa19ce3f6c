// rmsnorm.wgsl — h[t] = x[t] * rsqrt(mean(x[t]^2) + eps) * w for each token t of a prompt chunk
// (one workgroup per token); rows of P.cols floats, norm weights at NW[norm_off].

@group(0) @binding(0) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> Y: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> NW: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> P: Params;
@group(0) @binding(4) var<uniform> S: Step;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let t = wg.x;
  if (t >= S.n) { return; }
  let n4 = P.cols / 4u;
  let b = t * n4;
  var ss = 0.0;
  for (var i = tid; i < n4; i += 256u) { let v = X[b + i]; ss += dot(v, v); }
  ss = wg_sum(ss, tid);
  let r = inverseSqrt(ss / f32(P.cols) + P.eps);
  for (var i = tid; i < n4; i += 256u) { Y[b + i] = X[b + i] * r * NW[P.norm_off / 4u + i]; }
}
