// embed.wgsl — x[t] = row TOK[t] of the Q1_0 token embedding, for tokens whose id falls in this
// part [row0, row0 + rows) of a split matrix. One workgroup per (block of 128, token). With
// flags = 1 the token ids are also recorded in the history (for the sampler's penalties).
// QOUT (decode, one token): x times the first layer's attention-norm weights (at norm_off) is
// also written pre-quantised to QO (qo.wgsl, four blocks a workgroup) for the first product.

override QOUT: bool = false;

@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> TOK: array<u32>;
@group(0) @binding(2) var<storage, read_write> X: array<f32>;
@group(0) @binding(3) var<storage, read_write> HIST: array<u32>;
@group(0) @binding(4) var<storage, read> NW: array<f32>;
@group(0) @binding(5) var<storage, read_write> QO: array<u32>;
@group(0) @binding(6) var<uniform> P: Params;
@group(0) @binding(7) var<uniform> S: Step;

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = wg.y;
  let b = wg.x;
  if (t >= S.n || b >= P.cols / 128u) { return; }
  let id = TOK[t];
  if (P.flags == 1u && b == 0u && lid == 0u && S.pos + t < P.n_ctx) { HIST[S.pos + t] = id; }
  let mine = id >= P.row0 && id - P.row0 < P.rows;  // (the same for the whole workgroup)
  let blk = (min(id, P.row0 + P.rows - 1u) - P.row0) * P.row_bytes + b * 18u;
  let bits = w32(blk + 2u + (lid / 32u) * 4u);
  let d = wscale(blk);
  let v = select(-d, d, ((bits >> (lid % 32u)) & 1u) != 0u);
  let k = b * 128u + lid;
  if (mine) { X[t * P.cols + k] = v; }
  if (QOUT) {
    qv_y[lid / 4u][lid % 4u] = v * NW[P.norm_off + k];
    qv_r[lid / 4u][lid % 4u] = v;
    workgroupBarrier();
    if (mine && lid < 32u) { qv_put(lid, b * 4u + lid / 8u); }
  }
}
