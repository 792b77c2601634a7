"""Diffusion for the vocoder: schedules, samplers as pure functions, schedule search, distillation.

- :mod:`.schedules` β schedules, ᾱ, noise levels √ᾱ and σ, log-σ training draws, DDPM/DDIM steps
- :mod:`.noise`     Gaussian noise keyed by (seed, step, sample position)
- :mod:`.priors`    noise priors (white, energy, spectral) shaped by the mel
- :mod:`.training`  the objective (v L1, MR-STFT on x̂, optional chain loss) and frame/sample alignment
- :mod:`.samplers`  ``sample(model, mel, schedule, generator)``, chunked ``vocode``
- :mod:`.search`    few-step schedule search on held-out clips
- :mod:`.distill`   1–2-step students trained against the ground truth and the teacher
"""
