// attn_io_r.wgsl — attn_one.wgsl's bindings for kernel attn_one_r (ROPE: the decode attention that
// also rotates q and the token's k and writes its k and v into the cache): the cache read_write,
// the RoPE table (rope.wgsl's ROPE) at binding 4, the parameters after it.

@group(0) @binding(0) var<storage, read> QKV: array<f32>;
@group(0) @binding(1) var<storage, read_write> KV: array<u32>;
@group(0) @binding(2) var<storage, read_write> O: array<f32>;
@group(0) @binding(3) var<storage, read_write> PART: array<f32>;
@group(0) @binding(4) var<storage, read> RT: array<vec2<f32>>;
@group(0) @binding(5) var<uniform> P: Params;
@group(0) @binding(6) var<uniform> S: Step;

fn kv_put(i: u32, v: u32) { KV[i] = v; }
