-- line_items: the caller's columns of items (a view: one wide copy of the lines, not two).
CREATE VIEW line_items AS SELECT {line_columns} FROM items
