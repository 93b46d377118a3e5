import PosterSimCore
// The Hugging Face cache layout and downloads from HF_ENDPOINT.
//
// - `ModelName`: the three models, their repositories, files, metric and embedding size.
// - `HubSettings`: cache folder, endpoint, offline flag, token and timeouts, read from an environment dictionary.
// - `HubCache`: the models--ORG--NAME/{refs,blobs,snapshots} layout huggingface_hub uses.
// - `ModelResolver`: finds a model's files on disk (--model-dir first, then the cache), and the weights sha256.
// - `HubClient`: fetches missing files from the Hub with resume, retries and checksum verification.
