// argmax.wgsl — the generic plan's per-slot argmax of the logits for sample.wgsl: workgroup s
// writes the best (order-preserving key, row) of rows [s HR, (s + 1) HR) to AM[s] (HR = P.cols,
// ties to the lower row), as matvec.wgsl's ARGMAX does in the fused plan.

@group(0) @binding(0) var<storage, read> L: array<f32>;
@group(0) @binding(1) var<storage, read_write> AM: array<u32>;
@group(0) @binding(2) var<uniform> P: Params;
@group(0) @binding(3) var<uniform> S: Step;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  if (S.n == 0u) { return; }  // (never: every binding the host sets must be used)
  var bk = 0u;
  var bi = 0xffffffffu;
  for (var i = tid; i < P.cols; i += 256u) {
    let r = wg.x * P.cols + i;
    if (r < P.rows) {
      let k = key_of(L[r]);
      if (bi == 0xffffffffu || k > bk) { bk = k; bi = r; }
    }
  }
  let best = wg_argmax(bk, bi, tid);
  if (tid == 0u) {
    AM[2u * wg.x] = best.x;
    AM[2u * wg.x + 1u] = best.y;
  }
}
