"""The verified-kernel library and dispatch. Not built yet: see issue 5."""
