"""Losses for long-tailed training: per-sample CE/LDAM/focal, class weights, ResLT, ELF aggregation."""
