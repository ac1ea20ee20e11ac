"""Passages -> a cited answer: reading the question, choosing what to quote (the fitted `reader`), checking
a model's claims against their citations, the injection filter and follow-up rewriting."""
