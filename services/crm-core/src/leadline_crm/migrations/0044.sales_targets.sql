-- Sales targets (issue 15): what each rep is to win per month, in one currency, for won-versus-target on the sales
-- dashboard and GET /api/v1/sales/targets. One target per rep and month (set again, it is replaced).
-- depends: 0043.imports

CREATE TABLE sales_targets (
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    month       date NOT NULL CHECK (month = date_trunc('month', month)::date),
    amount      numeric(14, 2) NOT NULL CHECK (amount >= 0),
    currency    text NOT NULL DEFAULT 'EUR' CHECK (currency ~ '^[A-Z]{3}$'),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, month)
);
