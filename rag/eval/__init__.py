"""Question sets -> metrics with bootstrap confidence intervals beside BM25 and dense alone (`run`, also
``python -m rag.eval``), and fitting the reader on dev batches (`fit_reader`)."""
