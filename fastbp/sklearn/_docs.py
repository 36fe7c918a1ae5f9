"""The parameter and attribute sections that the docstrings of both estimators share."""

_PARAMS_DOC = """
    hidden_layer_sizes : int or sequence of int, default=(100,)
        The number of neurons of each hidden layer.
    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
        Hidden-layer activation (fastbp also accepts 'leaky_relu', 'elu',
        'softplus' and 'gelu').
    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        'adam' and 'sgd' train by minibatches (:class:`fastbp.Adam`,
        :class:`fastbp.SGD`); 'lbfgs' is scipy's L-BFGS-B on the full-batch
        loss, each evaluation one compiled call of fastbp's loss and gradient.
    alpha : float, default=0.0001
        Strength of the L2 penalty ``0.5 * alpha * ||W||^2 / n_batch`` on the
        weights (not the biases), as in scikit-learn.
    batch_size : int or 'auto', default='auto'
        Minibatch size; 'auto' is ``min(200, n_samples)``.
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        SGD's schedule, as scikit-learn's: 'invscaling' sets the rate to
        ``learning_rate_init / (t_ + 1) ** power_t`` after each epoch;
        'adaptive' divides it by 5 each time the stopping rule (``tol``,
        ``n_iter_no_change``) fires, and stops when it is at most 1e-6.
        Ignored by 'adam' and 'lbfgs'.
    learning_rate_init : float, default=0.001
        The step size, in scikit-learn's units (see the module notes).
    power_t : float, default=0.5
        The exponent of the 'invscaling' schedule.
    max_iter : int, default=200
        Maximum number of epochs ('sgd', 'adam') or of L-BFGS iterations
        ('lbfgs').
    shuffle : bool, default=True
        Shuffle the samples in each epoch.
    random_state : int, RandomState instance or None, default=None
        Draws the initial weights (scikit-learn's scheme and order), the
        validation split and the seed of the shuffling.
    tol : float, default=1e-4
        Training stops when the loss (or the validation score, with early
        stopping) has not improved by at least ``tol`` for more than
        ``n_iter_no_change`` consecutive epochs. For 'lbfgs', L-BFGS-B's
        ``gtol``: it stops when the largest gradient component is below it.
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
    max_fun : int, default=15000
        'lbfgs' only: the maximum number of loss evaluations.
    backend : {'auto', 'cpu', 'parallel', 'numpy'}, default='auto'
        fastbp's training backend (see :meth:`fastbp.MLP.fit`).
    dtype : {None, 'float32', 'float64'}, default=None
        Parameter and computation dtype of fastbp's kernels. None follows
        the input, as scikit-learn: float32 input trains and predicts in
        float32 (fastbp's fast path), any other input is converted to float64
        and trains in float64; 'lbfgs' trains in float64 (scipy's L-BFGS-B,
        as in scikit-learn). 'float32' or 'float64' forces that dtype for
        training and prediction, whatever the input. Predictions have the
        dtype scikit-learn would return: float32 for float32 input to
        float32 weights, float64 otherwise."""

_ATTRIBUTES_DOC = """
    loss_ : float
        The loss of the last epoch (for 'lbfgs', of the final weights), in
        scikit-learn's units.
    best_loss_ : float or None
        The lowest ``loss_`` reached (None with early stopping). Like the
        next three, set by the stochastic solvers only, as in scikit-learn.
    loss_curve_ : list of float
        ``loss_`` of every epoch.
    validation_scores_ : list of float or None
        The validation score of every epoch, with early stopping (NaN for
        the epochs after the training diverged, as in scikit-learn).
    best_validation_score_ : float or None
        The best validation score, with early stopping.
    t_ : int
        Number of training samples seen by the stochastic solvers.
    coefs_ : list of ndarray
        ``coefs_[i]`` is the ``(fan_in, fan_out)`` weight matrix of layer ``i``.
    intercepts_ : list of ndarray
        ``intercepts_[i]`` is the bias vector of layer ``i``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of str
        Feature names seen during fit, when X had string column names.
    n_iter_ : int
        Number of epochs run by the last ``fit`` (1 after ``partial_fit``),
        or of L-BFGS iterations.
    n_layers_ : int
        Number of layers, input and output included.
    n_outputs_ : int
        Number of output units.
    out_activation_ : str
        The output activation."""
