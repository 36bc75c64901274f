-- 0006: the background process's generic work. The outbox is keyed by (category,
-- operation) like the objects it writes to, so any category's writes can wait in it.

-- Every row names its category; the operation is any op name of the category (the
-- deliverer's hook table, core/deliver.c, says which it can deliver; a row it cannot is
-- dead with a message naming the pair).
ALTER TABLE outbox ADD COLUMN category text;
UPDATE outbox o SET category = ob.category FROM objects ob WHERE ob.id = o.object_id;
ALTER TABLE outbox ALTER COLUMN category SET NOT NULL;
ALTER TABLE outbox ADD CONSTRAINT outbox_category_check CHECK (category ~ '^[a-z][a-z_]{0,31}$');
ALTER TABLE outbox DROP CONSTRAINT outbox_operation_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_operation_check
    CHECK (operation ~ '^[a-z][a-z0-9_]{0,63}$');
-- A row that binds its object to the tool's id (tracking's create_run) is never discarded:
-- the rows behind it need the binding.
ALTER TABLE outbox ADD COLUMN binds_object boolean NOT NULL DEFAULT false;
UPDATE outbox SET binds_object = true WHERE operation = 'create_run';

