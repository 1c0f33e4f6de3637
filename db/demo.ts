/**
 * The embedded demo database: a second PGlite served over the PostgreSQL wire protocol on
 * 127.0.0.1:DEMO_DB_PORT, seeded once with a small store (customers, products, orders,
 * order_items). "Use Demo Database" and POST /api/test-demo point at it.
 */
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";

export type DemoSettings = {
  host: string;
  port: number;
  database: string;
  username: string;
  password: string;
  ssl: boolean;
};

export type DemoDatabase = { settings: DemoSettings; close(): Promise<void> };

const SEED_SQL = `
create table customers (
  id serial primary key,
  email text not null unique,
  name text not null,
  country text not null,
  created_at timestamptz not null default now()
);
create table products (
  id serial primary key,
  sku text not null unique,
  name text not null,
  category text not null,
  price numeric(10, 2) not null check (price >= 0),
  stock integer not null default 0
);
create table orders (
  id serial primary key,
  customer_id integer not null references customers (id),
  status text not null,
  ordered_at timestamptz not null,
  total numeric(12, 2) not null default 0
);
create table order_items (
  order_id integer not null references orders (id) on delete cascade,
  product_id integer not null references products (id),
  quantity integer not null check (quantity > 0),
  unit_price numeric(10, 2) not null,
  primary key (order_id, product_id)
);
create index orders_customer_idx on orders (customer_id);
create view order_totals as
  select o.id as order_id, o.customer_id, sum(i.quantity * i.unit_price) as amount
  from orders o join order_items i on i.order_id = o.id group by o.id;

insert into customers (email, name, country, created_at)
select 'customer' || n || '@example.com',
       (array['Ana','Luis','Marta','Jorge','Sofía','Diego','Lucía','Pablo'])[1 + n % 8] || ' ' ||
       (array['García','López','Martínez','Pérez','Sánchez','Romero'])[1 + n % 6],
       (array['MX','ES','AR','CO','CL','US'])[1 + n % 6],
       timestamptz '2025-01-01' + (n || ' hours')::interval
from generate_series(1, 600) as n;

insert into products (sku, name, category, price, stock)
select 'SKU-' || lpad(n::text, 5, '0'),
       (array['Mug','Notebook','Backpack','Lamp','Chair','Desk','Pen','Bottle'])[1 + n % 8] ||
         ' model ' || n,
       (array['Kitchen','Office','Travel','Home'])[1 + n % 4],
       round((5 + (n * 37) % 400)::numeric + 0.99, 2),
       (n * 13) % 250
from generate_series(1, 250) as n;

insert into orders (customer_id, status, ordered_at)
select 1 + (n * 7) % 600,
       (array['pending','paid','shipped','delivered','cancelled'])[1 + n % 5],
       timestamptz '2025-06-01' + (n * 97 || ' minutes')::interval
from generate_series(1, 2500) as n;

insert into order_items (order_id, product_id, quantity, unit_price)
select o.id, 1 + (o.id * k * 31) % 250, 1 + (o.id + k) % 4, p.price
from orders o
cross join generate_series(1, 3) as k
join products p on p.id = 1 + (o.id * k * 31) % 250
on conflict do nothing;

update orders o set total = t.amount
from (select order_id, sum(quantity * unit_price) as amount from order_items group by order_id) t
where t.order_id = o.id;
`;

/** Seeds an empty demo database; a database that has the tables is left as it is. */
export async function seedDemo(db: PGlite): Promise<boolean> {
  const existing = await db.query<{ n: number }>(
    "select count(*)::int as n from pg_tables where schemaname = 'public' and tablename = 'customers'",
  );
  if (existing.rows[0].n > 0) return false;
  await db.transaction(async (tx) => {
    await tx.exec(SEED_SQL);
  });
  return true;
}

/** Opens (and seeds on first start) the demo database and serves it on loopback. */
export async function startDemoDatabase(
  options: { dataDir: string; port: number },
): Promise<DemoDatabase> {
  const db = await PGlite.create(options.dataDir);
  await seedDemo(db);
  const server = new PGLiteSocketServer({
    db,
    host: "127.0.0.1",
    port: options.port,
    maxConnections: 16,
  });
  await server.start();
  // Port 0 asks the OS for a free one (tests); read back which.
  const port = Number(server.getServerConn().split(":").pop()) || options.port;
  return {
    settings: {
      host: "127.0.0.1",
      port,
      database: "postgres",
      username: "postgres",
      password: "postgres",
      ssl: false,
    },
    async close() {
      await server.stop();
      await db.close();
    },
  };
}

/** Demo settings from DEMO_DATABASE_URL (an external database used as the demo). */
export function demoSettingsFromUrl(url: string): DemoSettings {
  const parsed = new URL(url);
  return {
    host: parsed.hostname,
    port: Number(parsed.port || 5432),
    database: decodeURIComponent(parsed.pathname.replace(/^\//, "")) || "postgres",
    username: decodeURIComponent(parsed.username) || "postgres",
    password: decodeURIComponent(parsed.password),
    ssl: parsed.searchParams.get("sslmode") === "require",
  };
}
