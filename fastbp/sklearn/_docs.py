"""The parameter and attribute sections that the docstrings of both estimators share."""

_PARAMS_DOC = """
    hidden_layer_sizes : int or sequence of int, default=(100,)
        The number of neurons of each hidden layer.
    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
        Hidden-layer activation (fastbp also accepts 'leaky_relu', 'elu',
        'softplus' and 'gelu').
    solver : {'adam', 'sgd'}, default='adam'
        'lbfgs' is not supported (a clear ValueError).
    alpha : float, default=0.0001
        Strength of the L2 penalty ``0.5 * alpha * ||W||^2 / n_batch`` on the
        weights (not the biases), as in scikit-learn.
    batch_size : int or 'auto', default='auto'
        Minibatch size; 'auto' is ``min(200, n_samples)``.
    learning_rate : {'constant'}, default='constant'
        Only the constant schedule is supported.
    learning_rate_init : float, default=0.001
        The step size, in scikit-learn's units (see the module notes).
    max_iter : int, default=200
        Maximum number of epochs.
    shuffle : bool, default=True
        Shuffle the samples in each epoch.
    random_state : int, RandomState instance or None, default=None
        Draws the initial weights (scikit-learn's scheme and order), the
        validation split and the seed of the shuffling.
    tol : float, default=1e-4
        Training stops when the loss (or the validation score, with early
        stopping) has not improved by at least ``tol`` for more than
        ``n_iter_no_change`` consecutive epochs.
    verbose : bool, default=False
        Print the loss after each epoch.
    warm_start : bool, default=False
        Continue from the fitted weights on the next ``fit``.
    momentum : float, default=0.9
        SGD momentum, in ``[0, 1)``.
    nesterovs_momentum : bool, default=True
        Nesterov momentum for SGD (when ``momentum > 0``).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data and stop when its score
        stops improving; the best weights are kept.
    validation_fraction : float, default=0.1
        Fraction of the training data held out for early stopping.
    beta_1, beta_2 : float, default=0.9, 0.999
        Adam's decay rates, in ``[0, 1)``.
    epsilon : float, default=1e-8
        Adam's numerical-stability term.
    n_iter_no_change : int, default=10
        Epochs without an improvement of ``tol`` before stopping.
    backend : {'auto', 'cpu', 'parallel', 'numpy'}, default='auto'
        fastbp's training backend (see :meth:`fastbp.MLP.fit`).
    dtype : {'float32', 'float64'}, default='float32'
        Parameter and computation dtype of fastbp's kernels."""

_ATTRIBUTES_DOC = """
    loss_ : float
        The loss of the last epoch, in scikit-learn's units.
    best_loss_ : float or None
        The lowest ``loss_`` reached (None with early stopping).
    loss_curve_ : list of float
        ``loss_`` of every epoch.
    validation_scores_ : list of float or None
        The validation score of every epoch, with early stopping.
    best_validation_score_ : float or None
        The best validation score, with early stopping.
    t_ : int
        Number of training samples seen.
    coefs_ : list of ndarray
        ``coefs_[i]`` is the ``(fan_in, fan_out)`` weight matrix of layer ``i``.
    intercepts_ : list of ndarray
        ``intercepts_[i]`` is the bias vector of layer ``i``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of str
        Feature names seen during fit, when X had string column names.
    n_iter_ : int
        Number of epochs run by the last ``fit`` (1 after ``partial_fit``).
    n_layers_ : int
        Number of layers, input and output included.
    n_outputs_ : int
        Number of output units.
    out_activation_ : str
        The output activation."""
