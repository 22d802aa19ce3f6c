// onebit.d.ts — TypeScript declarations of the onebit engine's OpenAI-shaped API (onebit.js).

/** Where a model comes from: a URL, a File or Blob, the bytes, or (Node) a file path. */
export type ModelSource = string | URL | Blob | ArrayBuffer | Uint8Array;

export interface LoadOptions {
  /** 'auto' (default): WebGPU when there is an adapter, else the WebAssembly CPU path. */
  backend?: 'auto' | 'webgpu' | 'cpu';
  /** Called while the model loads. */
  onProgress?: (p: { fraction: number }) => void;
  /** Context size; 0 (default) = the model's, at most 4096. */
  nCtx?: number;
  /** A navigator.gpu-like object (default: navigator.gpu, or in Node the `webgpu` package when installed). */
  gpu?: unknown;
  /** CPU path: threads to compute on (0 = default); more than one needs a cross-origin isolated page or worker. */
  threads?: number;
  /** Advanced: where the engine's files are, for hosts that move them (coreUrl, wasmUrl, kernelsUrl, kernelsGenericUrl, mtCoreUrl, mtWasmUrl). */
  engine?: { coreUrl?: string | URL; wasmUrl?: string | URL; kernelsUrl?: string | URL; kernelsGenericUrl?: string | URL; mtCoreUrl?: string | URL; mtWasmUrl?: string | URL; wasm?: ArrayBuffer | Uint8Array };
}

export type Role = 'system' | 'developer' | 'user' | 'assistant';

export interface ChatMessage {
  role: Role;
  content: string | null | Array<{ type: 'text'; text: string }>;
}

export interface ChatCompletionCreateParams {
  messages: ChatMessage[];
  stream?: boolean | null;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  min_p?: number | null;
  repeat_penalty?: number | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  seed?: number | null;
  stop?: string | string[] | null;
  n?: 1 | null;
  /** Qwen3's thinking mode (default false). */
  enable_thinking?: boolean;
  chat_template_kwargs?: { enable_thinking?: boolean };
  signal?: AbortSignal | null;
  /** Constrained output (JSON / a GBNF grammar), where the engine supports it. */
  response_format?: { type: 'text' } | { type: 'json_object' } | { type: 'json_schema'; json_schema: { name?: string; schema: object; strict?: boolean } };
  grammar?: string;
}

export type FinishReason = 'stop' | 'length' | 'tool_calls';

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

export interface Timings {
  prompt_n: number;
  prompt_ms: number;
  predicted_n: number;
  predicted_ms: number;
  n_past: number;
  n_ctx: number;
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: Array<{ index: 0; message: { role: 'assistant'; content: string; reasoning_content?: string }; logprobs: null; finish_reason: FinishReason }>;
  usage: Usage;
  timings: Timings;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: Array<{ index: 0; delta: { role?: 'assistant'; content?: string; reasoning_content?: string }; logprobs: null; finish_reason: FinishReason | null }>;
  usage?: Usage;
}

export interface ChatCompletionStream extends AsyncIterable<ChatCompletionChunk>, AsyncIterator<ChatCompletionChunk> {
  /** Collects the whole stream as text (not in OpenAI's API). */
  text(): Promise<string>;
}

export interface ModelInfo {
  name: string;
  arch: string;
  nCtx: number;
  [key: string]: unknown;
}

export declare class OneBitError extends Error {
  name: 'OneBitError';
  code: 'invalid_request' | 'invalid_model' | 'io' | 'out_of_memory' | 'context_length_exceeded' | 'backend' | 'device_lost' | 'unsupported' | 'internal';
  /** The request field at fault, if any. */
  param: string | null;
  status: number | null;
}

export declare class OneBit {
  /** Loads a model and starts the engine. */
  static load(source: ModelSource, options?: LoadOptions): Promise<OneBit>;
  readonly chat: {
    completions: {
      create(params: ChatCompletionCreateParams & { stream: true }): Promise<ChatCompletionStream>;
      create(params: ChatCompletionCreateParams & { stream?: false | null }): Promise<ChatCompletion>;
      create(params: ChatCompletionCreateParams): Promise<ChatCompletion | ChatCompletionStream>;
    };
  };
  /** 'webgpu' or 'cpu'. */
  readonly backend: 'webgpu' | 'cpu';
  /** The model's name (general.name) or architecture. */
  readonly model: string;
  readonly info: ModelInfo;
  /** Milliseconds the load took. */
  readonly loadMs: number;
  /** CPU threads in use (1 on WebGPU). */
  readonly threads: number;
  /** The GPU adapter's description, or 'WebAssembly CPU'. */
  readonly adapter: string;
  /** Figures of the last request. */
  readonly last: Timings | null;
  /** Frees the engine; later requests fail. */
  close(): void;
}

export default OneBit;
