"""Files -> documents -> chunks -> the store: loaders (with OCR for scanned pages), encodings, the chunker
and the crash-safe ingest pipeline (`pipeline.Ingestor`)."""
