-- Reserved for h16b (renewal): a placeholder so that 0008 can apply before
-- it lands; its own migration replaces this file.
SELECT 1;
