"""infscale.laws: scaling-law forms, fitters (Huber/L-BFGS multi-start, least squares, variable projection),
bootstrap, validation, diagnostics and compute-optimal allocation, one module each:

    from infscale.laws.fit import HuberFitter
    from infscale.laws.io import load_runs, load_fit
    law = HuberFitter("chinchilla").fit(load_runs("chinchilla")).law_
    law.predict(n_params, n_tokens); law.allocate_compute(1e21)

The package re-exports nothing, so importing one module loads only what it needs: the law forms (`forms`, `fitted`,
`testtime`, `downstream`, `lbfgs`, `varpro`) numpy and scipy; the runs table and what fits it (`runs`, `fit`,
`pipeline`, `bootstrap`, `validate`, `diagnostics`) pandas too; reading files (`io`) the bundled datasets.
"""
