"""Offline toy components (tokenizer, tiny models) for tests and the embedded demo."""
