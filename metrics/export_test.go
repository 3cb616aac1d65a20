package metrics

// Quantile is quantile, for tests.
var Quantile = quantile
