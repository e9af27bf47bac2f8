"""WeCom 居民上报: the county's grids pushed into WeCom, residents' reports pulled into tickets."""
