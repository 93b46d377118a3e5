// The Hugging Face cache layout and downloads from HF_ENDPOINT.
