"""The organisation as data: one document (districts, skills, queues, agents, users, hours,
menus, categories, keywords, transfer codes) checked as a whole (`document`), read from and
written to the database in one transaction (`store`), and the district administration the
admin site and API use (`districts`)."""
