-- Rules saved before this migration hold their trigger parameters, conditions and actions as one JSON string
-- (the JSON text was handed to the pool's jsonb codec, which encoded it again). Unwrap them, so SQL can read the
-- rules' JSON (which lists a rule uses) and every rule has one shape.
UPDATE workflow_rules SET trigger_params = (trigger_params #>> '{}')::jsonb WHERE jsonb_typeof(trigger_params) = 'string';
UPDATE workflow_rules SET conditions = (conditions #>> '{}')::jsonb WHERE jsonb_typeof(conditions) = 'string';
UPDATE workflow_rules SET actions = (actions #>> '{}')::jsonb WHERE jsonb_typeof(actions) = 'string';
-- The same for what the runs recorded (the event's data, the actions done).
UPDATE rule_runs SET data = (data #>> '{}')::jsonb WHERE jsonb_typeof(data) = 'string';
UPDATE rule_runs SET actions_done = (actions_done #>> '{}')::jsonb WHERE jsonb_typeof(actions_done) = 'string';
