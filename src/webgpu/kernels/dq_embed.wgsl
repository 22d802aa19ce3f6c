// dq_embed.wgsl — the generic plan's embedding lookup: x[t] = row TOK[t] of the token embedding
// (any type: dq.wgsl, constant WT) times P.scale, for tokens whose id falls in this part
// [row0, row0 + rows) of a split matrix. Grid: ceil(cols / 1024) x n tokens, 4 elements an
// invocation. flags = 1: the first part also records the token ids in the history (sampler).

@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> TOK: array<u32>;
@group(0) @binding(2) var<storage, read_write> X: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> HIST: array<u32>;
@group(0) @binding(4) var<uniform> P: Params;
@group(0) @binding(5) var<uniform> S: Step;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = wg.y;
  if (t >= S.n) { return; }
  let id = TOK[t];
  if (P.flags == 1u && wg.x == 0u && lid == 0u && S.pos + t < P.n_ctx) { HIST[S.pos + t] = id; }
  let k = (wg.x * 256u + lid) * 4u;
  if (k >= P.cols || id < P.row0 || id - P.row0 >= P.rows) { return; }
  X[(t * P.cols + k) / 4u] = dq((id - P.row0) * P.row_bytes, k) * P.scale;
}
