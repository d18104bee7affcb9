-- A key with the delegate scope acts for one employee, named by UPN: it may reach
-- that employee's devices only. The database keeps the two together, so no key is
-- ever a delegate for nobody, or bound to an employee without being a delegate.
ALTER TABLE api_keys ADD COLUMN employee_upn text;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_delegate_check
    CHECK ((employee_upn IS NOT NULL) = ('delegate' = ANY (scopes)));
