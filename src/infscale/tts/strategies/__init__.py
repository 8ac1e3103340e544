"""The built-in test-time strategies, one file each, registered by name in `infscale.tts.core.spec.STRATEGIES`:
greedy and the sampling strategies (`sampling`), step-level beam search (`beam`), MCTS (`mcts`), REBASE (`rebase`)
and particle filtering (`particle_filter`)."""
