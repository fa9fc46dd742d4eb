-- Segment's reserved traits title and address (street, city, postal code) fill the person (issue 11, item 5).
-- depends: 0008.touchpoints_automated
ALTER TABLE persons
    ADD COLUMN title       text,
    ADD COLUMN street      text,
    ADD COLUMN city        text,
    ADD COLUMN postal_code text;
