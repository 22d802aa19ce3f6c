// matmul.wgsl — Y[t][r] = W[r] . X[t] for a prompt chunk (matrix-matrix): Q1_0 weights, f32
// activations. Each invocation computes 4 rows x 8 tokens; the 256 invocations of a workgroup
// are laid out as (256 / tt) x tt along rows x tokens, where tt = 1, 4 or 16 by the chunk's size
// (the host's grid uses the same rule, mm_tok_threads in src/backend_webgpu.c): a tile of 1024
// rows x 8 tokens for short chunks up to 64 rows x 128 tokens for long ones. The K loop steps one
// 32-weight word at a time: the tile's activations go through workgroup memory (16 KiB at most),
// and each weight's sign is folded into its scale (+-d) once and used for 8 tokens.
// RESID: Y += W X (residual add). Rows go to Y[out_off + t * out_stride + row0 + r].

override RESID: bool = false;

@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<uniform> P: Params;
@group(0) @binding(4) var<uniform> S: Step;

var<workgroup> xs: array<vec4<f32>, 1024>;  // [32 k][bn / 4 quads of tokens]

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let n = S.n;
  var tt = 16u;
  if (n <= 8u) { tt = 1u; } else if (n <= 32u) { tt = 4u; }
  let nr = 256u / tt;       // invocations along rows
  let bn = tt * 8u;         // tokens of the tile
  let q4 = bn / 4u;         // quads of tokens
  let tr = tid % nr;
  let tc = tid / nr;
  let r0 = wg.x * nr * 4u + tr * 4u;
  let tt0 = wg.y * bn;
  var acc: array<vec4<f32>, 8>;  // [row m][half h] -> acc[m * 2 + h]
  for (var i = 0u; i < 8u; i++) { acc[i] = vec4<f32>(0.0); }
  for (var k0 = 0u; k0 < P.cols; k0 += 32u) {
    for (var i = tid; i < bn * 8u; i += 256u) {
      let t = i / 8u;
      let kv = i % 8u;
      var v = vec4<f32>(0.0);
      if (tt0 + t < n) { v = X[(P.in_off + (tt0 + t) * P.in_stride + k0) / 4u + kv]; }
      let q = t / 4u;
      let c = t % 4u;
      xs[(kv * 4u) * q4 + q][c] = v.x;
      xs[(kv * 4u + 1u) * q4 + q][c] = v.y;
      xs[(kv * 4u + 2u) * q4 + q][c] = v.z;
      xs[(kv * 4u + 3u) * q4 + q][c] = v.w;
    }
    workgroupBarrier();
    var nb: array<u32, 4>;
    var db: array<u32, 4>;
    for (var m = 0u; m < 4u; m++) {
      let r = min(r0 + m, P.rows - 1u);
      let blk = P.w_off + r * P.row_bytes + (k0 / 128u) * 18u;
      nb[m] = ~w32(blk + 2u + ((k0 / 32u) % 4u) * 4u);  // set bit: the weight is -d
      db[m] = bitcast<u32>(wscale(blk));
    }
    for (var kk = 0u; kk < 32u; kk++) {
      let xa = xs[kk * q4 + tc * 2u];
      let xb = xs[kk * q4 + tc * 2u + 1u];
      for (var m = 0u; m < 4u; m++) {
        let wv = bitcast<f32>(db[m] ^ ((nb[m] << (31u - kk)) & 0x80000000u));
        acc[m * 2u] += wv * xa;
        acc[m * 2u + 1u] += wv * xb;
      }
    }
    workgroupBarrier();
  }
  for (var m = 0u; m < 4u; m++) {
    let r = r0 + m;
    if (r >= P.rows) { continue; }
    for (var h = 0u; h < 2u; h++) {
      for (var c = 0u; c < 4u; c++) {
        let t = tt0 + tc * 8u + h * 4u + c;
        if (t < n) {
          let o = P.out_off + t * P.out_stride + P.row0 + r;
          var y = acc[m * 2u + h][c];
          if (RESID) { y += Y[o]; }
          Y[o] = y;
        }
      }
    }
  }
}
