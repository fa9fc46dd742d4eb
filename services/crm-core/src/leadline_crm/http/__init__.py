"""What every domain of crm-core shares on the HTTP side: errors (problem+json), the auth guard and roles, body
validation, cursors and page limits, JSON responses, the OpenAPI registry, the generic CRUD engine, the shared
JSON Schemas and the web app's page plumbing. It imports no domain."""
