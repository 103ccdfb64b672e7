"""SegFace (AAAI 2025): multi-scale features, MLP fusion, class-token transformer decoder."""
