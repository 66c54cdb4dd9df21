"""The only place that computes money: price book, promotions, discount codes, rounding."""
