-- A key with the delegate scope acts for one employee at a time, named by UPN: it
-- reaches that employee's devices only. The employee is either bound to the key
-- (employee_upn) or, when it is null, named by each request. Only a delegate key is
-- ever bound to an employee.
ALTER TABLE api_keys ADD COLUMN employee_upn text;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_delegate_check
    CHECK (employee_upn IS NULL OR 'delegate' = ANY (scopes));
