-- Touchpoints keep the event as the JSON text it arrived as (type json, not jsonb): the event is written once
-- and read back whole, and building jsonb's binary form was the largest part of the cost of storing a
-- touchpoint. The few statements that edit or pick inside an event cast it to jsonb there.
ALTER TABLE touchpoints ALTER COLUMN event TYPE json USING event::json;
