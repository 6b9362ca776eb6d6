"""Published figures (the registry in ``r1eval/claims/*.toml``) and the verdicts that check them."""
