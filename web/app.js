// boxoffice pages
