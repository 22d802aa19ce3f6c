// swiglu.wgsl — for a prompt chunk: g = silu(g) * u in place, where row t of the gate/up product
// holds g in [0, n_ff) and u in [n_ff, 2 n_ff). QOUT (where the products run on subgroup
// matrices): the result goes straight into the quantised input of mm_sg.wgsl instead (xq.wgsl):
// then a workgroup takes 8 blocks of 128 (a 32-wide subgroup each, 4 values a lane).

override QOUT: bool = false;

@group(0) @binding(0) var<storage, read_write> GU: array<f32>;
@group(0) @binding(1) var<storage, read_write> XQ: array<u32>;
@group(0) @binding(2) var<uniform> P: Params;
@group(0) @binding(3) var<uniform> S: Step;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let t = wg.y;
  if (t >= S.n) { return; }
  let b = t * 2u * P.n_ff;
  if (QOUT) {
    let nb = P.n_ff / 128u;
    let blk = wg.x * 8u + tid / 32u;
    let ok = blk < nb;
    let i = (min(blk, nb - 1u) * 32u + tid % 32u) * 4u;
    var y = vec4<f32>(0.0);
    for (var e = 0u; e < 4u; e++) {
      let g = GU[b + i + e];
      y[e] = g / (1.0 + exp(-g)) * GU[b + P.n_ff + i + e];
    }
    xq_put(y, t, blk, P.n_ff, tid % 32u, ok, tid);
    return;
  }
  let i = wg.x * 256u + tid;
  if (i >= P.n_ff) { return; }
  let g = GU[b + i];
  GU[b + i] = g / (1.0 + exp(-g)) * GU[b + P.n_ff + i];
}
