// attn_o.wgsl — the output of attention.wgsl (kernel `attention`, appended by web/gpu.mjs): dims
// 4 dg .. 4 dg + 3 of head h of token t into O[t][n_head * HDR].

@group(0) @binding(2) var<storage, read_write> O: array<vec4<f32>>;

fn attn_store(v: vec4<f32>, t: u32, h: u32, dg: u32, ok: bool, tid: u32) {
  if (ok) { O[(t * P.n_head + h) * (HDR / 4u) + dg] = v; }
}
