"""fastbp: train small multilayer perceptrons fast."""
