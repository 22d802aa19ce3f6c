// swiglu.wgsl — for a prompt chunk: g = silu(g) * u in place, where row t of the gate/up product
// holds g in [0, n_ff) and u in [n_ff, 2 n_ff).

@group(0) @binding(0) var<storage, read_write> GU: array<f32>;
@group(0) @binding(1) var<uniform> P: Params;
@group(0) @binding(2) var<uniform> S: Step;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let t = wg.y;
  let i = wg.x * 256u + tid;
  if (t >= S.n || i >= P.n_ff) { return; }
  let b = t * 2u * P.n_ff;
  let g = GU[b + i];
  GU[b + i] = g / (1.0 + exp(-g)) * GU[b + P.n_ff + i];
}
