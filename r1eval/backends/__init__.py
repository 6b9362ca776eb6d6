"""How r1eval talks to a model: OpenAI-compatible endpoints, in-process models, replayed files."""
