// act.wgsl — the generic plan's FFN activation, in place: g = act(g) * u (GATED) or act(g), for
// the n_ff values of each token (g at t n_ff, u at in_off + t n_ff of the same buffer). ACT: 0
// SiLU x / (1 + e^-x), 1 GELU (tanh form, as llama.cpp), 2 ReLU^2. Grid: ceil(n_ff / 256) x n.

override ACT: u32 = 0u;
override GATED: bool = true;

@group(0) @binding(0) var<storage, read_write> GU: array<f32>;
@group(0) @binding(1) var<uniform> P: Params;
@group(0) @binding(2) var<uniform> S: Step;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let t = wg.y;
  let i = wg.x * 256u + tid;
  if (t >= S.n || i >= P.n_ff) { return; }
  let x = GU[t * P.n_ff + i];
  var a: f32;
  if (ACT == 1u) {
    // tanh(z) = 1 - 2 / (e^2z + 1): exact limits where a tanh builtin may overflow
    let z = 0.7978845608028654 * (x + 0.044715 * x * x * x);
    a = 0.5 * x * (1.0 + (1.0 - 2.0 / (exp(2.0 * z) + 1.0)));
  } else if (ACT == 2u) {
    a = select(0.0, x * x, x > 0.0);
  } else {
    a = x / (1.0 + exp(-x));
  }
  if (GATED) { a *= GU[P.in_off + t * P.n_ff + i]; }
  GU[t * P.n_ff + i] = a;
}
