-- The emails report counts the sends made in a range (issue 13): without this it read every send.
-- depends: 0024.marketing_emails_devices
CREATE INDEX email_sends_sent ON email_sends (sent_at);
